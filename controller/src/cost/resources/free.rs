//! Which resource types cost nothing by themselves, and why the others that are not
//! priced are not.

/// Resource types that cost nothing by themselves. Their usage (if any) is billed on
/// other resources, or they are configuration objects AWS does not charge for.
const FREE_TYPES: &[&str] = &[
    "aws_acm_certificate_validation",
    "aws_alb_listener",
    "aws_alb_listener_rule",
    "aws_alb_target_group",
    "aws_alb_target_group_attachment",
    "aws_api_gateway_account",
    "aws_api_gateway_authorizer",
    "aws_api_gateway_base_path_mapping",
    "aws_api_gateway_deployment",
    "aws_api_gateway_integration",
    "aws_api_gateway_integration_response",
    "aws_api_gateway_method",
    "aws_api_gateway_method_response",
    "aws_api_gateway_method_settings",
    "aws_api_gateway_resource",
    "aws_apigatewayv2_authorizer",
    "aws_apigatewayv2_deployment",
    "aws_apigatewayv2_integration",
    "aws_apigatewayv2_route",
    "aws_apigatewayv2_stage",
    "aws_appautoscaling_policy",
    "aws_appautoscaling_target",
    "aws_autoscaling_attachment",
    "aws_autoscaling_lifecycle_hook",
    "aws_autoscaling_notification",
    "aws_autoscaling_policy",
    "aws_autoscaling_schedule",
    "aws_backup_global_settings",
    "aws_backup_plan",
    "aws_backup_region_settings",
    "aws_backup_selection",
    "aws_backup_vault_lock_configuration",
    "aws_backup_vault_notifications",
    "aws_backup_vault_policy",
    "aws_cloudfront_cache_policy",
    "aws_cloudfront_origin_access_control",
    "aws_cloudfront_origin_access_identity",
    "aws_cloudfront_origin_request_policy",
    "aws_cloudfront_response_headers_policy",
    "aws_cloudwatch_log_resource_policy",
    "aws_cloudwatch_log_stream",
    "aws_customer_gateway",
    "aws_db_option_group",
    "aws_db_parameter_group",
    "aws_db_subnet_group",
    "aws_default_network_acl",
    "aws_default_route_table",
    "aws_default_security_group",
    "aws_default_subnet",
    "aws_default_vpc",
    "aws_docdb_cluster_parameter_group",
    "aws_docdb_subnet_group",
    "aws_ec2_transit_gateway",
    "aws_ec2_transit_gateway_peering_attachment_accepter",
    "aws_ec2_transit_gateway_route",
    "aws_ec2_transit_gateway_route_table",
    "aws_ec2_transit_gateway_route_table_association",
    "aws_ec2_transit_gateway_route_table_propagation",
    "aws_ecr_lifecycle_policy",
    "aws_ecr_repository_policy",
    "aws_ecs_cluster",
    "aws_ecs_cluster_capacity_providers",
    "aws_ecs_task_definition",
    "aws_efs_access_point",
    "aws_efs_backup_policy",
    "aws_efs_file_system_policy",
    "aws_efs_mount_target",
    "aws_egress_only_internet_gateway",
    "aws_elasticache_parameter_group",
    "aws_elasticache_subnet_group",
    "aws_elasticsearch_domain_policy",
    "aws_iam_access_key",
    "aws_iam_group",
    "aws_iam_group_membership",
    "aws_iam_group_policy",
    "aws_iam_group_policy_attachment",
    "aws_iam_instance_profile",
    "aws_iam_openid_connect_provider",
    "aws_iam_policy",
    "aws_iam_policy_attachment",
    "aws_iam_role",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_iam_service_linked_role",
    "aws_iam_user",
    "aws_iam_user_policy",
    "aws_iam_user_policy_attachment",
    "aws_internet_gateway",
    "aws_internet_gateway_attachment",
    "aws_key_pair",
    "aws_kms_alias",
    "aws_lambda_permission",
    "aws_launch_configuration",
    "aws_launch_template",
    "aws_lb_listener",
    "aws_lb_listener_certificate",
    "aws_lb_listener_rule",
    "aws_lb_target_group",
    "aws_lb_target_group_attachment",
    "aws_main_route_table_association",
    "aws_mq_configuration",
    "aws_msk_configuration",
    "aws_network_acl",
    "aws_network_acl_association",
    "aws_network_acl_rule",
    "aws_opensearch_domain_policy",
    "aws_placement_group",
    "aws_rds_cluster_parameter_group",
    "aws_redshift_parameter_group",
    "aws_redshift_subnet_group",
    "aws_redshiftserverless_namespace",
    "aws_route",
    "aws_route53_record",
    "aws_route_table",
    "aws_route_table_association",
    "aws_s3_bucket_acl",
    "aws_s3_bucket_cors_configuration",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_logging",
    "aws_s3_bucket_notification",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
    "aws_s3_bucket_website_configuration",
    "aws_secretsmanager_secret_policy",
    "aws_secretsmanager_secret_rotation",
    "aws_secretsmanager_secret_version",
    "aws_security_group",
    "aws_security_group_rule",
    "aws_sns_topic_policy",
    "aws_subnet",
    "aws_vpc",
    "aws_vpc_dhcp_options",
    "aws_vpc_dhcp_options_association",
    "aws_vpc_endpoint_route_table_association",
    "aws_vpc_endpoint_subnet_association",
    "aws_vpc_ipv4_cidr_block_association",
    "aws_vpc_security_group_egress_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpn_connection_route",
    "aws_vpn_gateway",
    "aws_vpn_gateway_attachment",
    "aws_vpn_gateway_route_propagation",
    "aws_wafv2_ip_set",
    "aws_wafv2_regex_pattern_set",
    "aws_wafv2_rule_group",
    "aws_wafv2_web_acl_association",
    "aws_wafv2_web_acl_logging_configuration",
];

/// Providers whose resources never appear on a cloud bill.
const FREE_PREFIXES: &[&str] = &[
    "random_",
    "tls_",
    "time_",
    "local_",
    "null_",
    "archive_",
    "external_",
    "http_",
    "cloudinit_",
    "kubernetes_",
    "helm_",
];

/// Whether a resource type is free by itself.
pub(crate) fn is_free(resource_type: &str) -> bool {
    resource_type == "terraform_data"
        || FREE_TYPES.binary_search(&resource_type).is_ok()
        || FREE_PREFIXES.iter().any(|p| resource_type.starts_with(p))
}

/// Why a type that is neither priced nor free is not priced.
pub(crate) fn unsupported_reason(resource_type: &str) -> String {
    if resource_type.starts_with("aws_") {
        format!(
            "{resource_type} is not supported by the cost engine yet (neither priced nor on the free list)"
        )
    } else {
        format!(
            "{resource_type} belongs to a provider the cost engine does not price (only AWS is priced)"
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn free_list_is_sorted_for_binary_search() {
        let mut sorted = FREE_TYPES.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, FREE_TYPES);
    }

    #[test]
    fn free_and_unsupported() {
        assert!(is_free("aws_vpc"));
        assert!(is_free("terraform_data"));
        assert!(is_free("null_resource"));
        assert!(is_free("random_id"));
        assert!(!is_free("aws_instance"));
        assert!(!is_free("google_compute_instance"));
        assert!(unsupported_reason("aws_sqs_queue").contains("not supported"));
        assert!(unsupported_reason("google_compute_instance").contains("only AWS"));
    }
}
