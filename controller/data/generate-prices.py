#!/usr/bin/env python3
"""Builds controller/data/aws-prices.csv, the embedded price book, from

- controller/data/curated-prices.csv: rows read by hand from cited public documents
  (each row names its source and date), and
- controller/data/sources/*.json.xz: verbatim copies of public AWS price files listed,
  with their origin and digests, in controller/data/sources/MANIFEST.tsv.

Deterministic: the same inputs give the same bytes (rows sorted by service, region, key;
no clock, no network). Standard library only.

    python3 controller/data/generate-prices.py            # rewrite aws-prices.csv
    python3 controller/data/generate-prices.py --check    # exit 1 if it is stale

A generated row replaces a curated row with the same service, region and key: the
generated table is complete for the dimensions it covers, and mixing sources of
different dates for one dimension would make the book inconsistent.
"""

import csv
import decimal
import hashlib
import io
import json
import lzma
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent
SOURCES = DATA / "sources"
CURATED = DATA / "curated-prices.csv"
BOOK = DATA / "aws-prices.csv"
VERSION = "2026-12-03.3"
HEADER = ["service", "region", "key", "unit", "usd", "source", "observed"]

# The commercial AWS regions, by the location names AWS's price files use. Local Zones,
# Wavelength Zones, GovCloud and China are not regions a provider `region` can name for
# these prices, so their columns in the files are not taken.
REGIONS = {
    "US East (N. Virginia)": "us-east-1",
    "US East (Ohio)": "us-east-2",
    "US West (N. California)": "us-west-1",
    "US West (Oregon)": "us-west-2",
    "Africa (Cape Town)": "af-south-1",
    "Asia Pacific (Hong Kong)": "ap-east-1",
    "Asia Pacific (Taipei)": "ap-east-2",
    "Asia Pacific (Mumbai)": "ap-south-1",
    "Asia Pacific (Hyderabad)": "ap-south-2",
    "Asia Pacific (Tokyo)": "ap-northeast-1",
    "Asia Pacific (Seoul)": "ap-northeast-2",
    "Asia Pacific (Osaka)": "ap-northeast-3",
    "Asia Pacific (Singapore)": "ap-southeast-1",
    "Asia Pacific (Sydney)": "ap-southeast-2",
    "Asia Pacific (Jakarta)": "ap-southeast-3",
    "Asia Pacific (Melbourne)": "ap-southeast-4",
    "Asia Pacific (Malaysia)": "ap-southeast-5",
    "Asia Pacific (New Zealand)": "ap-southeast-6",
    "Asia Pacific (Thailand)": "ap-southeast-7",
    "Canada (Central)": "ca-central-1",
    "Canada West (Calgary)": "ca-west-1",
    "EU (Frankfurt)": "eu-central-1",
    "EU (Zurich)": "eu-central-2",
    "EU (Ireland)": "eu-west-1",
    "EU (London)": "eu-west-2",
    "EU (Paris)": "eu-west-3",
    "EU (Milan)": "eu-south-1",
    "EU (Spain)": "eu-south-2",
    "EU (Stockholm)": "eu-north-1",
    "Israel (Tel Aviv)": "il-central-1",
    "Mexico (Central)": "mx-central-1",
    "Middle East (Bahrain)": "me-south-1",
    "Middle East (UAE)": "me-central-1",
    "South America (Sao Paulo)": "sa-east-1",
}

# "<location> (<attribute>: <value>, …)": the price-watcher's processing appends the
# item's attributes to the location name.
LOCATION = re.compile(r"^(?P<location>.+?\))(?: \((?P<attributes>.*)\))?$")
INSTANCE_ATTRIBUTE = re.compile(r"(?:^|, )Instance Type: (?P<type>[a-z0-9.\-]+)")
EC2_ITEM = re.compile(r"^OnDemand Linux-instancetype-(?P<type>[a-z0-9\-]+\.[a-z0-9\-]+)$")
RDS_ITEM = re.compile(
    r"^(?:\[[^\]]*\] )?Database Instance (?P<engine>MySQL|PostgreSQL|MariaDB|Aurora MySQL|Aurora PostgreSQL)"
    r" No license required(?P<io> Aurora IO Optimization Mode)? db (?P<class>[a-z0-9\-]+\.[a-z0-9\-]+)"
    r"(?: [^;]*?)? (?P<deployment>Single-AZ|Multi-AZ readable standbys|Multi-AZ)"
    r" (?:Current|Previous) Generation(?:;.*)?$"
)
CACHE_ITEM = re.compile(
    r"^\[OnDemand Cache Instance [^\]]*\] OnDemand Cache Instance .*? cache (?P<type>[a-z0-9\-]+\.[a-z0-9\-]+)"
    r" (?P<engine>Redis|Valkey|Memcached) (?:Current|Previous) Generation$"
)
RDS_ENGINES = {
    "MySQL": "mysql",
    "PostgreSQL": "postgres",
    "MariaDB": "mariadb",
    "Aurora MySQL": "aurora-mysql",
    "Aurora PostgreSQL": "aurora-postgresql",
}
# Items priced by name: (file, item) -> (service, key, unit, multiplier from AWS's unit).
NAMED_ITEMS = {
    ".raw.dynamodb.": {
        "Provisioned Write Units": ("dynamodb", "wcu", "WCU-hour", 1),
        "Provisioned Read Units": ("dynamodb", "rcu", "RCU-hour", 1),
        "Provisioned Replicated Write Units": ("dynamodb", "replicated-wcu", "rWCU-hour", 1),
        "PayPerRequest Write Request Units": ("dynamodb", "wru", "1M write request units", 1000000),
        "PayPerRequest Read Request Units": ("dynamodb", "rru", "1M read request units", 1000000),
        "PayPerRequest Replicated Write Request Units": (
            "dynamodb",
            "replicated-wru",
            "1M replicated write request units",
            1000000,
        ),
        "Data Storage Indexed GB-Mo": ("dynamodb", "storage", "GB-month", 1),
    },
    ".processed.eks.": {
        "Compute per Hours": ("eks", "cluster:hour", "hour", 1),
        "Compute ExtendedSupport per Hours": ("eks", "cluster-extended-support:hour", "hour", 1),
    },
    ".processed.ecs.": {
        "perCPU per hour": ("fargate", "vcpu-hour:x86_64", "vCPU-hour", 1),
        "perGB per hour": ("fargate", "gb-hour:x86_64", "GB-hour", 1),
        "ARM perCPU per hour": ("fargate", "vcpu-hour:arm64", "vCPU-hour", 1),
        "ARM perGB per hour": ("fargate", "gb-hour:arm64", "GB-hour", 1),
        "perCPU per hour Windows": ("fargate", "vcpu-hour:windows", "vCPU-hour", 1),
        "perGB per hour Windows": ("fargate", "gb-hour:windows", "GB-hour", 1),
        "perCPU OS License Fee per hour Windows": ("fargate", "windows-license:vcpu-hour", "vCPU-hour", 1),
    },
    # Non-instance dimensions: every commercial region the calculator files cover
    # (the curated rows held six).
    ".processed.vpc.": {
        "Hourly charge for In use Public IPv4 Addresses per Hrs": ("vpc", "public-ipv4:hour", "hour", 1),
        "Hourly charge for VPC Endpoints per Hrs": ("vpc", "endpoint-interface:hour", "hour", 1),
        "Charge for per GB data processed by VPC Endpoints per GB from 0 to 1048576": (
            "vpc",
            "endpoint-interface:gb",
            "GB",
            1,
        ),
        "Hourly charge for AWS Gateway Load Balancer VPC Endpoint per Hrs": ("vpc", "endpoint-gwlb:hour", "hour", 1),
        "Hourly charge for Transit Gateway VPC Attachments per hour": ("vpc", "tgw-attachment:vpc:hour", "hour", 1),
        "Hourly charge for Transit Gateway Site to-Site VPN attachments per hour": (
            "vpc",
            "tgw-attachment:vpn:hour",
            "hour",
            1,
        ),
        "Hourly charge for Transit Gateway Peering Attachments per hour": (
            "vpc",
            "tgw-attachment:peering:hour",
            "hour",
            1,
        ),
        "Hourly charge for Transit Gateway Connect attachments per hour": (
            "vpc",
            "tgw-attachment:connect:hour",
            "hour",
            1,
        ),
        "Charge for per GB data processed by AWS Transit Gateways for VPC attachments per GigaBytes": (
            "vpc",
            "tgw-attachment:vpc:gb",
            "GB",
            1,
        ),
        "Charge for per GB data processed by AWS Transit Gateways for Site to-Site VPN attachments per GigaBytes": (
            "vpc",
            "tgw-attachment:vpn:gb",
            "GB",
            1,
        ),
        "CreateVpnConnection per Hrs": ("vpc", "vpn-connection:hour", "hour", 1),
        "CreateVpnConnection per hours": ("vpc", "vpn-connection:hour", "hour", 1),
    },
    ".processed.cloudwatch.": {
        "Metric for the first 10000": ("cloudwatch", "metric", "metric-month", 1),
        "Logs Collected Data Ingestion": ("cloudwatch", "logs-ingestion", "GB", 1),
        "Stored Data": ("cloudwatch", "logs-storage", "GB-month", 1),
        "Alarm Standard": ("cloudwatch", "alarm:standard", "alarm-metric-month", 1),
        "Alarm High Resolution": ("cloudwatch", "alarm:high-resolution", "alarm-metric-month", 1),
        "Alarm Composite": ("cloudwatch", "alarm:composite", "alarm-month", 1),
        "Dashboard Basic Dashboard": ("cloudwatch", "dashboard", "dashboard-month", 1),
    },
    ".processed.elb.": {
        "Application Load Balancer Hours": ("elb", "alb:hour", "hour", 1),
        "Application Load Balancer LCU Hours": ("elb", "alb:capacity-unit", "LCU-hour", 1),
        "Network Load Balancer Hours": ("elb", "nlb:hour", "hour", 1),
        "Network Load Balancer LCU Hours": ("elb", "nlb:capacity-unit", "NLCU-hour", 1),
        "Gateway Load Balancer Hours": ("elb", "gwlb:hour", "hour", 1),
        "Gateway Load Balancer LCU Hours": ("elb", "gwlb:capacity-unit", "GLCU-hour", 1),
    },
    ".processed.secretsmanager.": {
        "Secret": ("secretsmanager", "secret", "secret-month", 1),
        "API Request": ("secretsmanager", "api-requests", "10k requests", 10000),
    },
    ".processed.kms.": {
        "Encryption Key": ("kms", "key", "key-month", 1),
        "API request - Non Free Tier": ("kms", "requests", "10k requests", 10000),
    },
    ".processed.lambda.": {
        "Lambda Requests": ("lambda", "requests", "1M requests", 1000000),
        "Lambda Duration": ("lambda", "duration:x86_64", "GB-second", 1),
        "Lambda Duration-ARM": ("lambda", "duration:arm64", "GB-second", 1),
    },
    ".processed.s3.": {
        "Standard Storage First 50 TB per GB Mo": ("s3", "standard:storage", "GB-month", 1),
        "PUT COPY/POST or LIST requests per Requests": ("s3", "standard:put-requests", "1k requests", 1000),
        "GET and all other requests per Requests": ("s3", "standard:get-requests", "1k requests", 1000),
    },
    # RDS instance storage. AWS prices Multi-AZ storage on rows of its own, which are not
    # always twice the Single-AZ price (Seoul gp2: 0.131 and 0.276).
    ".processed.rds-storage.": {
        "Database Storage Single AZ General Purpose": ("rds", "storage:gp2", "GB-month", 1),
        "Database Storage Single AZ General Purpose-GP3": ("rds", "storage:gp3", "GB-month", 1),
        "Database Storage Single AZ Provisioned IOPS": ("rds", "storage:io1", "GB-month", 1),
        "Database Storage Single AZ Provisioned IOPS-IO2": ("rds", "storage:io2", "GB-month", 1),
        "Database Storage Single AZ Magnetic": ("rds", "storage:standard", "GB-month", 1),
        "Provisioned IOPS Single AZ": ("rds", "iops:io1", "IOPS-month", 1),
        "Provisioned GP3 IOPS Single AZ": ("rds", "iops:gp3", "IOPS-month", 1),
        "Database Storage Multi AZ General Purpose": ("rds", "storage-multi-az:gp2", "GB-month", 1),
        "Database Storage Multi AZ General Purpose-GP3": ("rds", "storage-multi-az:gp3", "GB-month", 1),
        "Database Storage Multi AZ Provisioned IOPS": ("rds", "storage-multi-az:io1", "GB-month", 1),
        "Database Storage Multi AZ Provisioned IOPS-IO2": ("rds", "storage-multi-az:io2", "GB-month", 1),
        "Database Storage Multi AZ Magnetic": ("rds", "storage-multi-az:standard", "GB-month", 1),
        "Provisioned IOPS Multi AZ": ("rds", "iops-multi-az:io1", "IOPS-month", 1),
        "Provisioned GP3 IOPS Multi AZ": ("rds", "iops-multi-az:gp3", "IOPS-month", 1),
    },
    # A raw calculator file ({"regions": …}), as yeo/ec2.shop saved it.
    ".raw.ebs.": {
        "Storage General Purpose gp2 GB Mo": ("ebs", "gp2:storage", "GB-month", 1),
        "Storage General Purpose gp3 GB Mo": ("ebs", "gp3:storage", "GB-month", 1),
        "Storage Provisioned IOPS io1 GB Mo": ("ebs", "io1:storage", "GB-month", 1),
        "Storage Provisioned IOPS io2 GB month": ("ebs", "io2:storage", "GB-month", 1),
        "Storage Cold HDD sc1 GB Mo": ("ebs", "sc1:storage", "GB-month", 1),
        "Storage Throughput Optimized HDD st1 GB Mo": ("ebs", "st1:storage", "GB-month", 1),
        "Storage Magnetic standard GB Mo": ("ebs", "standard:storage", "GB-month", 1),
        "Provisioned EBS IOPS gp3 Volumes per IOPS Mo": ("ebs", "gp3:iops", "IOPS-month", 1),
        "Provisioned EBS IOPS io1 Volumes per IOPS Mo": ("ebs", "io1:iops", "IOPS-month", 1),
        "Provisioned EBS IOPS io2 Volumes per IOPS Mo": ("ebs", "io2:iops-tier1", "IOPS-month", 1),
        "Provisioned EBS I O Requests standard Volumes per IOs": ("ebs", "standard:io", "1M requests", 1000000),
        # AWS prices gp3 throughput per GiB/s-month; the book per MiB/s-month (÷ 1024, exact).
        "Provisioned Throughput gp3 per GiBps mo": (
            "ebs",
            "gp3:throughput",
            "MiBps-month",
            decimal.Decimal("0.0009765625"),
        ),
    },
    # Resource types priced from these files only.
    ".processed.efs.": {
        "General Purpose Storage GB Mo": ("efs", "storage:standard", "GB-month", 1),
        "Infrequent Access Storage GB Mo": ("efs", "storage:infrequent-access", "GB-month", 1),
        "Archive Storage GB Mo": ("efs", "storage:archive", "GB-month", 1),
        "One Zone General Purpose Storage GB Mo": ("efs", "storage:one-zone", "GB-month", 1),
        "One Zone Infrequent Access Storage GB Mo": ("efs", "storage:one-zone-infrequent-access", "GB-month", 1),
        "Throughput Provisioned": ("efs", "throughput:provisioned", "MiBps-month", 1),
    },
    ".processed.sns.": {
        "Amazon SNS API Requests": ("sns", "requests", "1M requests", 1000000),
        "HTTP Notifications": ("sns", "notifications:http", "1M notifications", 1000000),
        "SNS Email and Email JSON Notifications": ("sns", "notifications:email", "1M notifications", 1000000),
    },
    ".processed.ecr.": {
        "EC2 Container Registry": ("ecr", "storage", "GB-month", 1),
    },
    ".processed.kinesis.": {
        "Provisioned shard hour per ShardHour": ("kinesis", "shard:hour", "shard-hour", 1),
        # Retention beyond 24 hours, up to 7 days.
        "Addon shard hour per ShardHour": ("kinesis", "shard:extended-retention", "shard-hour", 1),
        "Payload Units per PutRequest": ("kinesis", "put-payload-units", "1M PUT payload units", 1000000),
        "OnDemandStreamHr per StreamHr": ("kinesis", "on-demand:stream-hour", "stream-hour", 1),
        "OnDemandDataIngested per GB": ("kinesis", "on-demand:ingested", "GB", 1),
    },
    ".processed.msk.": {
        "RunVolume": ("msk", "storage", "GB-month", 1),
        "Serverless Cluster-hours": ("msk", "serverless:cluster-hour", "cluster-hour", 1),
        "Serverless Partition-hours": ("msk", "serverless:partition-hour", "partition-hour", 1),
    },
    ".processed.rds-aurora-storage.": {
        # AWS publishes the Aurora Standard storage price under the PostgreSQL item only;
        # Aurora MySQL storage is the same product (AWS's Aurora pricing page lists one price).
        "Database Storage DB Engine Aurora PostgreSQL General Purpose Aurora": (
            "rds",
            "aurora-storage:standard",
            "GB-month",
            1,
        ),
        "Any IO Optimized Aurora": ("rds", "aurora-storage:io-optimized", "GB-month", 1),
        "System Operation Aurora I O Operation": ("rds", "aurora-io", "1M I/O requests", 1000000),
        "Aurora MySQL ServerlessV2": ("rds", "serverless-v2:aurora-mysql", "ACU-hour", 1),
        "Aurora PostgreSQL ServerlessV2": ("rds", "serverless-v2:aurora-postgresql", "ACU-hour", 1),
        "Aurora MySQL ServerlessV2 Aurora IO Optimization Mode": (
            "rds",
            "serverless-v2:aurora-mysql:io-optimized",
            "ACU-hour",
            1,
        ),
        "Aurora PostgreSQL ServerlessV2 Aurora IO Optimization Mode": (
            "rds",
            "serverless-v2:aurora-postgresql:io-optimized",
            "ACU-hour",
            1,
        ),
    },
    ".processed.docdb.": {
        "Database Storage": ("docdb", "storage", "GB-month", 1),
        "Database Storage IO-Optimized-DocDB": ("docdb", "storage:io-optimized", "GB-month", 1),
        "1 million IO requests": ("docdb", "io", "1M I/O requests", 1000000),
    },
    ".processed.redshift.": {
        "Redshift Serverless compute charges per RPU-Hr": ("redshift", "serverless:rpu-hour", "RPU-hour", 1),
    },
    ".processed.waf.": {
        "WebACL per month": ("wafv2", "web-acl", "web-ACL-month", 1),
        "Web ACL Activated per Month": ("wafv2", "web-acl", "web-ACL-month", 1),
        "Rule Activated per Month": ("wafv2", "rule", "rule-month", 1),
        "Rules added per WebACL per month": ("wafv2", "rule", "rule-month", 1),
        "Web Requests received per Request": ("wafv2", "requests", "1M requests", 1000000),
    },
    ".processed.apigateway.": {
        # Request tiers: REST first 333M a month, next 667M, next 19B, over 20B; HTTP first
        # 300M, over; WebSocket messages first 1B, over.
        "API Calls Number of up to 333 million": ("apigateway", "rest:requests", "1M requests", 1000000),
        "API Calls Number of Request Next 667 million": ("apigateway", "rest:requests:tier2", "1M requests", 1000000),
        "API Calls Number of Request Next 19 billion": ("apigateway", "rest:requests:tier3", "1M requests", 1000000),
        "API Calls Number of Request Over 20 billion": ("apigateway", "rest:requests:tier4", "1M requests", 1000000),
        "ApiGatewayHttpApi First 300 million": ("apigateway", "http:requests", "1M requests", 1000000),
        "ApiGatewayHttpApi more than 300 million": ("apigateway", "http:requests:tier2", "1M requests", 1000000),
        "WebSocket Messages Messages first 1 billion": ("apigateway", "websocket:messages", "1M messages", 1000000),
        "WebSocket Messages Messages over 1 billion": (
            "apigateway",
            "websocket:messages:tier2",
            "1M messages",
            1000000,
        ),
        "WebSocket Connection Minutes": (
            "apigateway",
            "websocket:connection-minutes",
            "1M connection-minutes",
            1000000,
        ),
        "Caching Memory Size 0 5": ("apigateway", "cache:0.5", "hour", 1),
        "Caching Memory Size 1 6": ("apigateway", "cache:1.6", "hour", 1),
        "Caching Memory Size 6 1": ("apigateway", "cache:6.1", "hour", 1),
        "Caching Memory Size 13 5": ("apigateway", "cache:13.5", "hour", 1),
        "Caching Memory Size 28 4": ("apigateway", "cache:28.4", "hour", 1),
        "Caching Memory Size 58 2": ("apigateway", "cache:58.2", "hour", 1),
        "Caching Memory Size 118": ("apigateway", "cache:118", "hour", 1),
        "Caching Memory Size 237": ("apigateway", "cache:237", "hour", 1),
    },
    # OpenSearch domain storage, per GB-month of each data node's EBS volume. AWS's file
    # names these items by their regionless rate code; `aliases()` gives them the names
    # the calculator's es-ondemand.json file uses.
    ".processed.es.": {
        "EBS Volume General Purpose": ("opensearch", "storage:gp2", "GB-month", 1),
        "EBS Volume GP3": ("opensearch", "storage:gp3", "GB-month", 1),
        "EBS Volume Provisioned Storage": ("opensearch", "storage:io1", "GB-month", 1),
        "EBS Volume Magnetic": ("opensearch", "storage:standard", "GB-month", 1),
    },
    # Only what the newer es.json lacks: provisioned IOPS and gp3 throughput (and OR1
    # instances, below). The 2024 file's other items are superseded by es.json.
    ".raw.es-ondemand.": {
        "EBS Volume Provisioned IOPS": ("opensearch", "iops:io1", "IOPS-month", 1),
        "EBS Volume GP3-Provisioned Storage": ("opensearch", "iops:gp3", "IOPS-month", 1),
        "EBS Volume GP3-ThroughPut-Storage": ("opensearch", "throughput:gp3", "MiBps-month", 1),
    },
    # Amazon MQ storage: ActiveMQ's durability-optimized storage is EFS; "Single AZ" is
    # the EBS storage of RabbitMQ and throughput-optimized ActiveMQ brokers.
    ".processed.mq.": {
        "Broker Storage GB Mo": ("mq", "storage:efs", "GB-month", 1),
        "Broker Storage Single AZ GB-Mo": ("mq", "storage:ebs", "GB-month", 1),
    },
    # AWS Backup storage: the general warm and cold tiers (EBS, EFS, RDS, …), and the
    # resource types AWS prices apart.
    ".processed.backup.": {
        "Backup Storage Warm per GB-month": ("backup", "storage:warm", "GB-month", 1),
        "Backup Storage Cold per GB-month": ("backup", "storage:cold", "GB-month", 1),
        "DDB Backup Storage Warm per GB-month": ("backup", "storage:dynamodb:warm", "GB-month", 1),
        "DDB Backup Storage Cold per GB-month": ("backup", "storage:dynamodb:cold", "GB-month", 1),
        "S3 Backup Storage Warm per GB-month": ("backup", "storage:s3:warm", "GB-month", 1),
    },
}
# OpenSearch instances: "r7g 16xlarge.search - Memory optimized - OnDemand - EBS Only - - -
# Hourly Cost" (es.json), "or1 large.search - OnDemand - OR1 - Current Generation"
# (es-ondemand.json).
SEARCH_ITEM = re.compile(r"^(?P<family>[a-z0-9]+) (?P<size>[a-z0-9]+\.search) - (?:.* - )?OnDemand - ")
OR1_ITEM = re.compile(r"^(?P<family>or1) (?P<size>[a-z0-9]+\.search) - OnDemand - OR1 ")
# Amazon MQ brokers, priced per deployment (an active/standby pair, a three-node cluster).
MQ_ACTIVEMQ = re.compile(r"^(?P<mode>Single Instance|Active Standby) mq (?P<type>[a-z0-9]+\.[a-z0-9]+)$")
MQ_RABBITMQ = re.compile(r"^\[RabbitMQ (?P<mode>Single AZ|Multi AZ) per Hrs\]")
MQ_MODES = {
    "Single Instance": "activemq:single-instance",
    "Active Standby": "activemq:active-standby-multi-az",
    "Single AZ": "rabbitmq:single-instance",
    "Multi AZ": "rabbitmq:cluster-multi-az",
}
# "<regionless rate code> V<n>": an item es.json names by its code.
CODED_ITEM = re.compile(r"^(?P<code>[A-Za-z0-9_\-]{43}) V[0-9]+$")
# MSK brokers: "<location> (Compute Family: m5.large, usageType: USE1-Kafka.m5.large, …)".
MSK_BROKER = re.compile(r"(?:^|, )usageType: [A-Z0-9]+-(?P<kind>Kafka|Express)\.(?P<type>[a-z0-9]+\.[a-z0-9]+)(?:,|$)")
# DocumentDB instances: "[<family> OnDemand( IO-Optimized-DocDB)?] …", the class in the
# location's attributes.
DOCDB_ITEM = re.compile(r"^\[(?:Memory optimized|General purpose) OnDemand(?P<io> IO-Optimized-DocDB)?\]")
# Redshift provisioned nodes: "[OnDemand Compute Instance … Generation] …".
REDSHIFT_ITEM = re.compile(r"^\[OnDemand Compute Instance (?:Current|Previous) Generation\]")
# Redis OSS and Memcached nodes are one price (`node:`), Valkey another (`valkey-node:`).
CACHE_PREFIX = {"Redis": "node", "Memcached": "memcached-node", "Valkey": "valkey-node"}


class GeneratorError(Exception):
    pass


def read_manifest():
    """Each line: file, origin repo@commit, path in that repo, git blob id, sha256 of
    the uncompressed bytes, date the file's version was committed, AWS file it copies."""
    entries = []
    for line in (SOURCES / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, origin, path, blob, sha256, observed, aws_file = line.split("\t")
        raw = lzma.decompress((SOURCES / name).read_bytes())
        if hashlib.sha256(raw).hexdigest() != sha256:
            raise GeneratorError(f"{name}: sha256 differs from MANIFEST.tsv; the input was changed")
        git_blob = hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()
        if git_blob != blob:
            raise GeneratorError(f"{name}: git blob id differs from MANIFEST.tsv")
        entries.append(
            {
                "name": name,
                # Short, since it is on tens of thousands of rows; MANIFEST.tsv has the
                # full commit, the digests and the AWS file this is a copy of.
                "source": f"{origin.split('@')[0]}@{origin.split('@')[1][:12]} {path}",
                "observed": observed,
                "data": json.loads(raw),
            }
        )
    return entries


def aliases(entries):
    """Regionless rate code -> item name, from the raw calculator files, which list each
    item under its name with its code (`RegionlessRateCode`). A code two names share is
    left out."""
    names = {}
    for entry in entries:
        for located in entry["data"].get("regions", {}).values():
            for item, value in located.items():
                code = value.get("RegionlessRateCode") if isinstance(value, dict) else None
                if code and code != item:
                    names.setdefault(code, set()).add(item)
    return {code: next(iter(n)) for code, n in names.items() if len(n) == 1}


def named(item, aliases):
    """An item es.json names by its code, under the name the code stands for."""
    m = CODED_ITEM.match(item)
    return aliases.get(m.group("code"), item) if m else item


def items(data):
    """(item name, location, attributes, price) for every commercial-region price."""
    if "regions" in data:
        # A calculator file as AWS serves it: {"regions": {location: {item: {"price": …}}}}.
        for located in sorted(data["regions"]):
            if located not in REGIONS:
                continue
            for item, value in sorted(data["regions"][located].items()):
                yield item, REGIONS[located], "", value["price"]
        return
    for item in sorted(data):
        for located, price in sorted(data[item].items()):
            if located == "Any":
                # Regionless prices (CloudWatch dashboards).
                yield item, "global", "", price
                continue
            m = LOCATION.match(located)
            if not m or m.group("location") not in REGIONS:
                continue
            yield item, REGIONS[m.group("location")], m.group("attributes") or "", price


def instance_of(attributes, from_item):
    m = INSTANCE_ATTRIBUTE.search(attributes)
    return m.group("type") if m else from_item


def rows_of(entry, codes):
    name = entry["name"]
    table = next((t for marker, t in NAMED_ITEMS.items() if marker in name), None)
    for coded, region, attributes, price in items(entry["data"]):
        item = named(coded, codes)
        if region == "global" and table is None:
            continue
        if table is not None:
            if item in table:
                service, key, unit, multiplier = table[item]
                yield (service, region, key, unit, scaled(price, multiplier))
            elif ".processed.es." in name and SEARCH_ITEM.match(item):
                m = SEARCH_ITEM.match(item)
                yield ("opensearch", region, f"instance:{m.group('family')}.{m.group('size')}", "hour", price)
            elif ".raw.es-ondemand." in name and OR1_ITEM.match(item):
                m = OR1_ITEM.match(item)
                yield ("opensearch", region, f"instance:{m.group('family')}.{m.group('size')}", "hour", price)
            elif ".processed.mq." in name and MQ_ACTIVEMQ.match(item):
                m = MQ_ACTIVEMQ.match(item)
                yield ("mq", region, f"broker:{MQ_MODES[m.group('mode')]}:mq.{m.group('type')}", "hour", price)
            elif ".processed.mq." in name and MQ_RABBITMQ.match(item):
                m = INSTANCE_ATTRIBUTE.search(attributes)
                if m:
                    mode = MQ_MODES[MQ_RABBITMQ.match(item).group("mode")]
                    yield ("mq", region, f"broker:{mode}:mq.{m.group('type')}", "hour", price)
            elif ".docdb." in name and DOCDB_ITEM.match(item):
                m = INSTANCE_ATTRIBUTE.search(attributes)
                if m:
                    kind = "instance:io-optimized" if DOCDB_ITEM.match(item).group("io") else "instance"
                    yield ("docdb", region, f"{kind}:{m.group('type')}", "hour", price)
            elif ".redshift." in name and REDSHIFT_ITEM.match(item):
                m = INSTANCE_ATTRIBUTE.search(attributes)
                if m:
                    yield ("redshift", region, f"node:{m.group('type')}", "node-hour", price)
            elif ".msk." in name:
                m = MSK_BROKER.search(attributes)
                if m and "operation: RunBroker" in attributes:
                    prefix = "kafka" if m.group("kind") == "Kafka" else "express"
                    yield ("msk", region, f"broker:{prefix}.{m.group('type')}", "broker-hour", price)
        elif ".ec2." in name:
            m = EC2_ITEM.match(item)
            if m:
                yield ("ec2", region, f"instance:{m.group('type')}", "hour", price)
        elif ".rds-" in name:
            m = RDS_ITEM.match(item)
            if not m or m.group("deployment") == "Multi-AZ readable standbys":
                continue
            engine = RDS_ENGINES[m.group("engine")]
            if m.group("io"):
                engine += ":io-optimized"
            cls = instance_of(attributes, "db." + m.group("class"))
            kind = "instance" if m.group("deployment") == "Single-AZ" else "instance-multi-az"
            yield ("rds", region, f"{kind}:{engine}:{cls}", "hour", price)
        elif ".elasticache." in name:
            m = CACHE_ITEM.match(item)
            if m:
                node = instance_of(attributes, "cache." + m.group("type"))
                yield ("elasticache", region, f"{CACHE_PREFIX[m.group('engine')]}:{node}", "hour", price)


def scaled(price, multiplier):
    """AWS prices some units per request; the book per million. Exact decimal arithmetic."""
    if multiplier == 1:
        return price
    try:
        return format(decimal.Decimal(price) * multiplier, "f")
    except decimal.InvalidOperation:
        return price


def normalise(price):
    """AWS writes ten decimals (`0.0960000000`); the book keeps the value exactly, without
    the trailing zeros."""
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", price):
        return None
    if "." in price:
        price = price.rstrip("0").rstrip(".")
    return price


def generated():
    rows = {}
    conflicts = set()
    entries = read_manifest()
    codes = aliases(entries)
    for entry in entries:
        for service, region, key, unit, price in rows_of(entry, codes):
            usd = normalise(price)
            if usd is None or usd == "0":
                continue
            slot = (service, region, key)
            if slot in conflicts:
                continue
            row = [service, region, key, unit, usd, entry["source"], entry["observed"]]
            if slot in rows and rows[slot][4] != usd:
                # Two items of AWS's file price the same dimension differently: take
                # neither rather than guess.
                del rows[slot]
                conflicts.add(slot)
                continue
            rows.setdefault(slot, row)
    return rows, conflicts


def field(value):
    return f'"{value}"' if "," in value else value


def build():
    rows, conflicts = generated()
    curated_text = CURATED.read_text(encoding="utf-8")
    curated = list(csv.reader(io.StringIO(curated_text)))
    comments = [r[0] for r in curated if r and r[0].startswith("#")]
    body = [r for r in curated if r and not r[0].startswith("#")]
    if body[0] != HEADER:
        raise GeneratorError(f"{CURATED.name}: the first row must be the header {','.join(HEADER)}")
    replaced = 0
    for r in body[1:]:
        slot = (r[0], r[1], r[2])
        if slot in rows or slot in conflicts:
            replaced += 1
            continue
        rows[slot] = r
    out = io.StringIO()
    out.write("# tollgate AWS price book: on-demand list prices in USD (Linux, shared tenancy, no free tier).\n")
    out.write("# GENERATED by controller/data/generate-prices.py from curated-prices.csv and sources/: do not edit.\n")
    for c in comments:
        if not c.startswith("# version:"):
            out.write(c + "\n")
    out.write(f"# version: {VERSION}\n")
    out.write(",".join(HEADER) + "\n")
    for slot in sorted(rows):
        out.write(",".join(field(v) for v in rows[slot]) + "\n")
    return out.getvalue(), len(rows), replaced, len(conflicts)


def main(argv):
    text, count, replaced, conflicts = build()
    if "--check" in argv:
        if BOOK.read_text(encoding="utf-8") != text:
            print(
                f"{BOOK} is not the generator's output: run python3 controller/data/generate-prices.py",
                file=sys.stderr,
            )
            return 1
        return 0
    BOOK.write_text(text, encoding="utf-8")
    print(
        f"{count} rows ({replaced} curated rows replaced by generated ones, "
        f"{conflicts} dimensions left out for conflicting prices)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except GeneratorError as e:
        print(f"generate-prices: {e}", file=sys.stderr)
        sys.exit(2)
