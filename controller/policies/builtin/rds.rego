# Databases: encrypted, never public, deletion-protected in production, backed up.
package tollgate.builtin.rds

import data.tollgate.builtin.lib

databases := {"aws_db_instance", "aws_rds_cluster", "aws_docdb_cluster"}

deny contains msg if {
	lib.enabled("RDS_ENCRYPTION")
	some kind in databases
	some db in lib.changed[kind]
	not db.change.after.storage_encrypted in lib.truthy
	msg := sprintf("RDS_ENCRYPTION: %s does not set storage_encrypted = true", [db.address])
}

deny contains msg if {
	lib.enabled("RDS_PUBLIC")
	some kind in {"aws_db_instance", "aws_rds_cluster_instance"}
	some db in lib.changed[kind]
	db.change.after.publicly_accessible == true
	msg := sprintf("RDS_PUBLIC: %s is publicly_accessible; reach it from inside the VPC", [db.address])
}

deny contains msg if {
	lib.enabled("RDS_DELETION_PROTECTION")
	lib.production
	some kind in databases
	some db in lib.changed[kind]
	not db.change.after.deletion_protection in lib.truthy
	msg := sprintf("RDS_DELETION_PROTECTION: %s is in environment %s and does not set deletion_protection = true", [db.address, input.tollgate.project.environment])
}

warn contains msg if {
	lib.enabled("RDS_BACKUP_RETENTION")
	some kind in databases
	some db in lib.changed[kind]
	db.change.after.backup_retention_period == 0
	msg := sprintf("RDS_BACKUP_RETENTION: %s keeps no automated backups (backup_retention_period = 0)", [db.address])
}
