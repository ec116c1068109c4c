# Network: no remote administration port open to the whole internet.
package tollgate.builtin.network

import data.tollgate.builtin.lib

open_to_all := {"0.0.0.0/0", "::/0"}

deny contains msg if {
	lib.enabled("OPEN_ADMIN_PORT")
	some rule in ingress
	rule.cidr in open_to_all
	some port in data.tollgate.config.adminPorts
	covers(rule, port)
	msg := sprintf("OPEN_ADMIN_PORT: %s allows %s to port %d; allow a narrower CIDR or use Session Manager", [rule.address, rule.cidr, port])
}

covers(rule, _) if rule.protocol in {"-1", "all"}

covers(rule, port) if {
	rule.protocol in {"tcp", "6", "udp", "17"}
	rule.from <= port
	port <= rule.to
}

# Ingress rules in each of the three shapes the AWS provider accepts.
ingress contains {"address": rc.address, "cidr": cidr, "protocol": lower(r.protocol), "from": r.from_port, "to": r.to_port} if {
	some rc in lib.changed.aws_security_group
	some r in object.get(rc.change.after, "ingress", [])
	some cidr in array.concat(object.get(r, "cidr_blocks", []), object.get(r, "ipv6_cidr_blocks", []))
}

ingress contains {"address": rc.address, "cidr": cidr, "protocol": lower(r.protocol), "from": r.from_port, "to": r.to_port} if {
	some rc in lib.changed.aws_security_group_rule
	r := rc.change.after
	r.type == "ingress"
	some cidr in array.concat(object.get(r, "cidr_blocks", []), object.get(r, "ipv6_cidr_blocks", []))
}

ingress contains {"address": rc.address, "cidr": cidr, "protocol": lower(r.ip_protocol), "from": object.get(r, "from_port", 0), "to": object.get(r, "to_port", 65535)} if {
	some rc in lib.changed.aws_vpc_security_group_ingress_rule
	r := rc.change.after
	some key in ["cidr_ipv4", "cidr_ipv6"]
	cidr := r[key]
	is_string(cidr)
}
