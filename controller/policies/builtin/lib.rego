# Shared helpers of tollgate's built-in compliance pack (docs/policy.md).
package tollgate.builtin.lib

# Resources the plan creates or updates, by type: the pack judges what this plan does, not
# resources it leaves alone (those were judged when they were last changed). Indexed by
# type so that each rule visits only the resources it inspects, not the whole plan.
changed[rc.type] contains rc if {
	some rc in input.resource_changes
	some action in rc.change.actions
	action in {"create", "update"}
}

# A rule is on unless the controller's policy configuration turns it off.
enabled(rule) if not rule in data.tollgate.config.disabledRules

production if input.tollgate.project.environment in data.tollgate.config.productionEnvironments

# The modules ("" for the root module) in which the plan keeps (creates, updates or
# leaves) a resource of each type, built once: "is there a public access block beside this
# bucket" is then a lookup, not a scan of the plan per bucket. The shipped modules put a
# bucket and its settings resources side by side.
kept[rc.type] contains object.get(rc, "module_address", "") if {
	some rc in input.resource_changes
	rc.change.after != null
}

# What the provider reads as true. The rules test `value in truthy` inline rather than
# through a function: on a plan of a thousand resources the calls dominated the pack's time.
truthy := {true, "true"}
