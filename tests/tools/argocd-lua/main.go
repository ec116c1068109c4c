// Command argocd-lua runs an Argo CD health script on one object the way Argo CD's
// application controller does (argo-cd util/lua/lua.go, runLua and ExecuteHealthLua): in
// gopher-lua, with only the package, base and table libraries opened (custom health scripts
// from argocd-cm run without useOpenLibs), the object as the global `obj` converted as
// decodeValue does, a one-second deadline, and the returned table read as the health status.
// Test tool only: deploy/argocd/test.sh runs every fixture through it and through lua5.1.
//
//	argocd-lua SCRIPT.lua FIXTURE.json   # prints "STATUS<TAB>MESSAGE"
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

func decodeValue(L *lua.LState, value interface{}) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case []interface{}:
		arr := L.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(L, item))
		}
		return arr
	case map[string]interface{}:
		tbl := L.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(L, item))
		}
		return tbl
	}
	return lua.LNil
}

func run(scriptPath, fixturePath string) (string, string, error) {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return "", "", err
	}
	raw, err := os.ReadFile(fixturePath)
	if err != nil {
		return "", "", err
	}
	var obj map[string]interface{}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", "", fmt.Errorf("%s: %w", fixturePath, err)
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			return "", "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", decodeValue(L, obj))
	if err := L.DoString(string(script)); err != nil {
		return "", "", err
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("expect table output from Lua script, not %s", L.Get(-1).Type())
	}
	status, _ := hs.RawGetString("status").(lua.LString)
	message, _ := hs.RawGetString("message").(lua.LString)
	switch status {
	case "Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing":
		return string(status), string(message), nil
	}
	return "Unknown", "Lua returned an invalid health status", nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua SCRIPT.lua FIXTURE.json")
		os.Exit(2)
	}
	status, message, err := run(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s failed on %s: %v\n", os.Args[1], os.Args[2], err)
		os.Exit(1)
	}
	fmt.Printf("%s\t%s\n", status, message)
}
