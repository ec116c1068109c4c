# Governance: every resource carries its owner's tags; instance sizes per environment.
package tollgate.builtin.governance

import data.tollgate.builtin.lib

deny contains msg if {
	lib.enabled("REQUIRED_TAGS")
	some resources in lib.changed
	some rc in resources
	tags := rc.change.after.tags_all
	is_object(tags)
	some tag in data.tollgate.config.requiredTags
	not tags[tag]
	msg := sprintf("REQUIRED_TAGS: %s has no tag %s", [rc.address, tag])
}

sizing := {
	"aws_instance": "instance_type",
	"aws_launch_template": "instance_type",
	"aws_db_instance": "instance_class",
	"aws_rds_cluster_instance": "instance_class",
	"aws_elasticache_cluster": "node_type",
	"aws_elasticache_replication_group": "node_type",
}

deny contains msg if {
	lib.enabled("INSTANCE_TYPE_ALLOWED")
	environment := input.tollgate.project.environment
	allowed := data.tollgate.config.instanceTypes[environment]
	some kind, attribute in sizing
	some rc in lib.changed[kind]
	size := rc.change.after[attribute]
	is_string(size)
	not allowed_size(size, allowed)
	msg := sprintf("INSTANCE_TYPE_ALLOWED: %s uses %s %s, not allowed in environment %s (allowed: %s)", [rc.address, attribute, size, environment, concat(", ", allowed)])
}

allowed_size(size, allowed) if {
	some pattern in allowed
	glob.match(pattern, [], size)
}
