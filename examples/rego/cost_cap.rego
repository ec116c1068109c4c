# A cost rule written as a policy: a plan that takes a Project above $500 a month needs a
# person, whatever the ApprovalPolicies pre-approve. Put it in a ConfigMap labelled
# tollgate.dev/policy (docs/policy.md).
package examples.cost_cap

deny contains msg if {
	input.tollgate.cost.monthly > 500
	msg := sprintf("%s would cost $%v a month, above the $500 cap", [input.tollgate.project.name, input.tollgate.cost.monthly])
}
