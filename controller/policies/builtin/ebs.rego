# EBS: volumes encrypted at rest, whichever resource creates them.
package tollgate.builtin.ebs

import data.tollgate.builtin.lib

deny contains msg if {
	lib.enabled("EBS_ENCRYPTION")
	some volume in unencrypted_volumes
	msg := sprintf("EBS_ENCRYPTION: %s creates an unencrypted EBS volume (%s); set encrypted = true", [volume.address, volume.where])
}

unencrypted_volumes contains {"address": rc.address, "where": "encrypted"} if {
	some rc in lib.changed.aws_ebs_volume
	not rc.change.after.encrypted in lib.truthy
}

unencrypted_volumes contains {"address": rc.address, "where": sprintf("%s[%d]", [block, i])} if {
	some rc in lib.changed.aws_instance
	some block in ["root_block_device", "ebs_block_device"]
	some i, device in object.get(rc.change.after, block, [])
	not device.encrypted in lib.truthy
}

unencrypted_volumes contains {"address": rc.address, "where": sprintf("block_device_mappings[%d]", [i])} if {
	some rc in lib.changed.aws_launch_template
	some i, mapping in object.get(rc.change.after, "block_device_mappings", [])
	some ebs in object.get(mapping, "ebs", [])
	not ebs.encrypted in lib.truthy
}
