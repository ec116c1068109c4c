# `tollgate policy test examples/rego` runs these.
package examples.cost_cap_test

import data.examples.cost_cap

project := {"namespace": "team-a", "name": "shop", "environment": "production"}

test_an_expensive_plan_is_denied if {
	cost_cap.deny == {"shop would cost $900 a month, above the $500 cap"} with input as {"tollgate": {"project": project, "cost": {"monthly": 900}}}
}

test_a_cheap_plan_passes if {
	count(cost_cap.deny) == 0 with input as {"tollgate": {"project": project, "cost": {"monthly": 120}}}
}

test_the_built_in_pack_denies_a_public_database if {
	public := {"resource_changes": [{
		"address": "aws_db_instance.db",
		"type": "aws_db_instance",
		"change": {"actions": ["create"], "after": {"publicly_accessible": true, "storage_encrypted": true}},
	}], "tollgate": {"project": project}}
	some msg in data.tollgate.builtin.rds.deny with input as public
	startswith(msg, "RDS_PUBLIC")
}
