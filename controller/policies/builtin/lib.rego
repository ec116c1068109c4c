# Shared helpers of tollgate's built-in compliance pack (docs/policy.md).
package tollgate.builtin.lib

# Resources the plan creates or updates: the pack judges what this plan does, not
# resources it leaves alone (those were judged when they were last changed).
changed contains rc if {
	some rc in input.resource_changes
	some action in rc.change.actions
	action in {"create", "update"}
}

# A rule is on unless the controller's policy configuration turns it off.
enabled(rule) if not rule in data.tollgate.config.disabledRules

production if input.tollgate.project.environment in data.tollgate.config.productionEnvironments

# `[module address, type]` of every resource the plan keeps (creates, updates or leaves),
# built once: `alongside` is then a lookup, not a scan of the plan per resource.
kept contains [object.get(rc, "module_address", ""), rc.type] if {
	some rc in input.resource_changes
	rc.change.after != null
}

# The plan keeps a resource of `kind` in the same module as `resource`: the shipped modules
# put a bucket and its settings resources side by side.
alongside(resource, kind) if [object.get(resource, "module_address", ""), kind] in kept

truthy(value) if value == true

truthy(value) if value == "true"
