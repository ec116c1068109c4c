// Command terraform-provider-tgtest is a Terraform provider for tollgate's tests only.
//
// Terraform's built-in resources cannot drift (terraform_data reads back what it stored),
// so the plan model's resource_drift could only be tested on hand-written JSON. tgtest_file
// keeps a file on the local disk: edit or delete the file outside Terraform and the next
// plan reports real drift, produced by real Terraform.
package main

import (
	"context"
	"errors"
	"io/fs"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	providerschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Address is where Terraform finds the provider (through a filesystem mirror).
const Address = "registry.terraform.io/tollgate/tgtest"

func main() {
	err := providerserver.Serve(context.Background(), func() provider.Provider { return &tgtest{} },
		providerserver.ServeOpts{Address: Address})
	if err != nil {
		log.Fatal(err)
	}
}

type tgtest struct{}

func (p *tgtest) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "tgtest"
	resp.Version = "0.1.0"
}

func (p *tgtest) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = providerschema.Schema{}
}

func (p *tgtest) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {}

func (p *tgtest) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{func() resource.Resource { return &file{} }}
}

func (p *tgtest) DataSources(context.Context) []func() datasource.DataSource { return nil }

type file struct{}

type fileModel struct {
	ID      types.String `tfsdk:"id"`
	Path    types.String `tfsdk:"path"`
	Content types.String `tfsdk:"content"`
}

func (r *file) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_file"
}

func (r *file) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A file on the local disk whose content Terraform manages.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"path": schema.StringAttribute{
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"content": schema.StringAttribute{Required: true},
		},
	}
}

// save writes the planned content and records it as the new state (create and update).
func (r *file) save(ctx context.Context, plan tfsdk.Plan, state *tfsdk.State, diags *diag.Diagnostics) {
	var m fileModel
	diags.Append(plan.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	m.ID = m.Path
	if err := os.WriteFile(m.Path.ValueString(), []byte(m.Content.ValueString()), 0o600); err != nil {
		diags.AddError("cannot write the file", err.Error())
		return
	}
	diags.Append(state.Set(ctx, &m)...)
}

func (r *file) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.save(ctx, req.Plan, &resp.State, &resp.Diagnostics)
}

// Read reports the file as it is on disk: that is what makes drift.
func (r *file) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m fileModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	data, err := os.ReadFile(m.Path.ValueString())
	if errors.Is(err, fs.ErrNotExist) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("cannot read the file", err.Error())
		return
	}
	m.Content = types.StringValue(string(data))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *file) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.save(ctx, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *file) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m fileModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := os.Remove(m.Path.ValueString()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		resp.Diagnostics.AddError("cannot delete the file", err.Error())
	}
}
