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

# The plan keeps (creates, updates or leaves) a resource of `kind` in the same module as
# `resource`: the shipped modules put a bucket and its settings resources side by side.
alongside(resource, kind) if {
	some rc in input.resource_changes
	rc.type == kind
	rc.change.after != null
	object.get(rc, "module_address", "") == object.get(resource, "module_address", "")
}

truthy(value) if value == true

truthy(value) if value == "true"
