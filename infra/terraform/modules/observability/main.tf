data "aws_region" "current" {}

locals {
  create = var.create
  ns     = var.metrics_namespace
  dims   = var.gateway_dimensions
  # FLEETGATE_MAX_CONNECTIONS of one gateway process (the gateways module's split of the task's).
  process_max_connections = ceil(var.gateway_max_connections / var.gateway_processes)
  # CloudWatch dashboard metric arrays: [namespace, metric, dim1, value1, dim2, value2, ...].
  gw_dims_flat = flatten([for k in sort(keys(var.gateway_dimensions)) : [k, var.gateway_dimensions[k]]])
  actions      = local.create ? [aws_sns_topic.alarms[0].arn] : []
  failed_results = {
    queue_full = "m1"
    timed_out  = "m2"
    closed     = "m3"
  }

  # function key => (function name, what its errors and throttles mean)
  functions = merge(
    {
      discovery = {
        name     = var.discovery_function_name
        errors   = "The discovery function failed invocations (it answers store failures itself with stale answers or 503; Errors are crashes and timeouts)."
        throttle = "Discovery invocations refused for lack of concurrency (reserved_concurrency): agents fall back to their compiled-in address."
      }
    },
    var.manager_function_name == "" ? {} : {
      manager = {
        name     = var.manager_function_name
        errors   = "The manager API function crashed or timed out (API Gateway answered 5xx)."
        throttle = "Manager API invocations refused for lack of concurrency (manager_reserved_concurrency): consoles get 5xx."
      }
    },
    var.dispatcher_function_name == "" ? {} : {
      dispatcher = {
        name     = var.dispatcher_function_name
        errors   = "A dispatcher run crashed or timed out; the next scheduled run takes over its expired leases."
        throttle = "A scheduled dispatcher run found no concurrency left (dispatcher_reserved_concurrency): runs are piling up."
      }
    },
  )
  # Errors (crashes, timeouts) and Throttles (out of reserved concurrency) of every function.
  lambda_alarms = merge([
    for k, f in local.functions : {
      for metric, description in { Errors = f.errors, Throttles = f.throttle } :
      "${k}-${lower(metric)}" => {
        description = description
        namespace   = "AWS/Lambda"
        metric      = metric
        dimensions  = { FunctionName = f.name }
      }
    }
  ]...)
  dispatcher_metric = "DispatcherFailures"

  # One dashboard widget per request-serving function (discovery at x 12, y 12; the manager API
  # at x 0, y 18): invocations, errors, throttles, p99 duration.
  function_widgets = [
    for i, f in [
      { title = "Discovery", name = var.discovery_function_name },
      { title = "Manager API", name = var.manager_function_name },
      ] : {
      type = "metric", x = 12 * ((i + 1) % 2), y = 12 + 6 * i, width = 12, height = 6
      properties = {
        title  = "${f.title}: invocations, errors, throttles, p99 duration"
        region = data.aws_region.current.id
        period = 60
        metrics = [
          for m in ["Invocations", "Errors", "Throttles", "Duration"] :
          ["AWS/Lambda", m, "FunctionName", f.name, m == "Duration" ? { stat = "p99", yAxis = "right" } : { stat = "Sum", yAxis = "left" }]
        ]
      }
    }
  ]
}

################################################################################
# Log groups shared by modules (created first, so their retention and key are ours)
################################################################################

resource "aws_cloudwatch_log_group" "kafka" {
  count = local.create ? 1 : 0

  name              = "/fleetgate/${var.name}/kafka-brokers"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

################################################################################
# Alarm topic
################################################################################

resource "aws_sns_topic" "alarms" {
  count = local.create ? 1 : 0

  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn

  tags = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each = local.create ? toset(var.alarm_emails) : toset([])

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

################################################################################
# Alarms on one metric over a threshold: one entry each, one resource for all
################################################################################

locals {
  # What an entry does not say: the Sum over 5 minutes, above 0 in one period, no data is fine.
  metric_alarm_defaults = {
    dimensions          = null
    statistic           = "Sum"
    period              = 300
    evaluation_periods  = 1
    datapoints_to_alarm = null
    threshold           = 0
    treat_missing_data  = "notBreaching"
  }

  # The alarm's name after "<name>-" => its metric and what differs from the defaults.
  metric_alarms = { for k, a in merge(
    {
      # Gateways: spool depth, connections, Kafka sends; the balancer's health checks.
      "spool-pending" = {
        description         = "Records wait in a gateway's spool: Kafka is down, slow or refusing. They are shipped in order once it takes them again; do not roll the gateways meanwhile (a task's spool lives on its own storage). fleetgate_spool_pending_records, docs/durability.md."
        namespace           = local.ns
        metric              = "fleetgate_spool_pending_records"
        dimensions          = local.dims
        statistic           = "Maximum"
        period              = 60
        evaluation_periods  = var.spool_alarm_minutes
        datapoints_to_alarm = var.spool_alarm_minutes
        threshold           = var.spool_pending_threshold
        treat_missing_data  = "missing"
      }
      "spool-full" = {
        description = "A gateway's spool reached its size bound: its agents are being slowed through HTTP/2 flow control (nothing is dropped by the gateway, but agents' own 2,048-record rings may overflow). fleetgate_spool_full_waits."
        namespace   = local.ns
        metric      = "fleetgate_spool_full_waits"
        dimensions  = local.dims
        statistic   = "Maximum"
        period      = 60
      }
      "spool-disk-failing" = {
        description = "A gateway cannot write its spool (disk full or I/O error): its agents are paused, the records it read wait in memory and are retried, and /readyz answers 503 so no new agents come. Free or grow the task's storage; it resumes by itself. fleetgate_spool_blocked, fleetgate_spool_disk_errors_total, docs/durability.md."
        namespace   = local.ns
        metric      = "fleetgate_spool_blocked"
        dimensions  = local.dims
        statistic   = "Maximum"
        period      = 60
      }
      "kafka-send-failures" = {
        description = "Kafka sends from the gateways failed (their records went to the spool or are retried). fleetgate_kafka_send_failures_total."
        namespace   = local.ns
        metric      = "fleetgate_kafka_send_failures_total"
        dimensions  = local.dims
      }
      "gateway-near-connection-limit" = {
        description        = "The busiest gateway process holds more than ${var.connection_limit_ratio * 100}% of its FLEETGATE_MAX_CONNECTIONS (${local.process_max_connections}); past the limit agents are refused with RESOURCE_EXHAUSTED. Autoscaling should be adding gateways: check its max_count."
        namespace          = local.ns
        metric             = "elkeid_ac_grpc_conn_count"
        dimensions         = local.dims
        statistic          = "Maximum"
        period             = 60
        evaluation_periods = 3
        threshold          = floor(local.process_max_connections * var.connection_limit_ratio)
      }
      "gateway-event-loop-lag" = {
        description        = "The worst gateway's event-loop delay p99 has been above ${var.event_loop_lag_alarm_ms} ms for 3 minutes: its agents' acks and commands are late (the end-to-end runs saw 20 s at saturation). Autoscaling adds gateways on it; if it stays, the service is at max_count or the gateways are short of CPU. fleetgate_nodejs_eventloop_lag_p99_seconds."
        namespace          = local.ns
        metric             = "fleetgate_nodejs_eventloop_lag_p99_seconds"
        dimensions         = local.dims
        statistic          = "Maximum"
        period             = 60
        evaluation_periods = 3
        threshold          = var.event_loop_lag_alarm_ms / 1000
      }
      "unhealthy-gateways" = {
        description        = "Gateways failing the balancer's /readyz check for 3 minutes (a draining gateway fails it for its drain only)."
        namespace          = "AWS/NetworkELB"
        metric             = "UnHealthyHostCount"
        dimensions         = { LoadBalancer = var.load_balancer_arn_suffix, TargetGroup = var.target_group_arn_suffix }
        statistic          = "Maximum"
        period             = 60
        evaluation_periods = 3
      }
      # Discovery's HTTP API (its function's errors and throttles are in lambda_alarms).
      "discovery-5xx" = {
        description = "The discovery API answered 5xx (503 registry unavailable: the store failed before this container ever had an answer)."
        namespace   = "AWS/ApiGateway"
        metric      = "5xx"
        dimensions  = { ApiId = var.discovery_api_id, Stage = "$default" }
        threshold   = 10
      }
    },
    # The task dispatcher's failed command batches and passes, which the metric filter below
    # counts from its log.
    var.dispatcher_log_group_name == "" ? {} : {
      "dispatcher-failures" = {
        description = "The task dispatcher failed to deliver command batches to gateways, or a pass failed, more than dispatcher_failure_threshold times in 5 minutes (its log group has the lines)."
        namespace   = var.metrics_namespace
        metric      = local.dispatcher_metric
        threshold   = var.dispatcher_failure_threshold
      }
    },
    var.kafka_cluster_name == "" ? {} : {
      "kafka-offline-partitions" = {
        description        = "Partitions without a leader: producers get errors and the gateways spool."
        namespace          = "AWS/Kafka"
        metric             = "OfflinePartitionsCount"
        dimensions         = { "Cluster Name" = var.kafka_cluster_name }
        statistic          = "Maximum"
        period             = 60
        evaluation_periods = 2
        treat_missing_data = "missing"
      }
    },
    # MSK publishes UnderReplicatedPartitions per broker: one alarm each.
    { for id in range(1, var.kafka_cluster_name == "" ? 1 : var.kafka_broker_count + 1) : "kafka-under-replicated-broker-${id}" => {
      description        = "Broker ${id} leads partitions whose replicas are behind: one more broker lost and acks=all writes are refused (min.insync.replicas 2), the gateways spool."
      namespace          = "AWS/Kafka"
      metric             = "UnderReplicatedPartitions"
      dimensions         = { "Cluster Name" = var.kafka_cluster_name, "Broker ID" = tostring(id) }
      statistic          = "Maximum"
      period             = 60
      evaluation_periods = 5
      treat_missing_data = "missing"
    } },
    # DynamoDB: any throttled read or write on a table (the gateways retry, but a storm's status
    # writes queue behind them).
    { for pair in setproduct(sort(keys(var.table_names)), ["Read", "Write"]) : "dynamodb-${pair[0]}-${lower(pair[1])}-throttles" => {
      description = "DynamoDB throttled ${lower(pair[1])}s on ${var.table_names[pair[0]]}: warm throughput (table_warm_throughput) or the account's table limits are short for this load."
      namespace   = "AWS/DynamoDB"
      metric      = "${pair[1]}ThrottleEvents"
      dimensions  = { TableName = var.table_names[pair[0]] }
      period      = 60
    } },
    local.lambda_alarms,
  ) : k => merge(local.metric_alarm_defaults, a) }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.create ? local.metric_alarms : {}

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.datapoints_to_alarm
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = each.value.treat_missing_data
  alarm_actions       = local.actions
  ok_actions          = local.actions

  tags = var.tags

  # dispatcher-failures: its metric comes from the filter.
  depends_on = [aws_cloudwatch_log_metric_filter.dispatch_failures]
}

# Before, each of these alarms was a resource of its own (and the functions' ones, one resource
# with for_each, before that the discovery function's two).
moved {
  from = aws_cloudwatch_metric_alarm.spool_pending[0]
  to   = aws_cloudwatch_metric_alarm.this["spool-pending"]
}

moved {
  from = aws_cloudwatch_metric_alarm.spool_full[0]
  to   = aws_cloudwatch_metric_alarm.this["spool-full"]
}

moved {
  from = aws_cloudwatch_metric_alarm.kafka_send_failures[0]
  to   = aws_cloudwatch_metric_alarm.this["kafka-send-failures"]
}

moved {
  from = aws_cloudwatch_metric_alarm.connections_near_limit[0]
  to   = aws_cloudwatch_metric_alarm.this["gateway-near-connection-limit"]
}

moved {
  from = aws_cloudwatch_metric_alarm.unhealthy_gateways[0]
  to   = aws_cloudwatch_metric_alarm.this["unhealthy-gateways"]
}

moved {
  from = aws_cloudwatch_metric_alarm.discovery_5xx[0]
  to   = aws_cloudwatch_metric_alarm.this["discovery-5xx"]
}

moved {
  from = aws_cloudwatch_metric_alarm.dispatcher_failures[0]
  to   = aws_cloudwatch_metric_alarm.this["dispatcher-failures"]
}

moved {
  from = aws_cloudwatch_metric_alarm.kafka_offline_partitions[0]
  to   = aws_cloudwatch_metric_alarm.this["kafka-offline-partitions"]
}

moved {
  from = aws_cloudwatch_metric_alarm.discovery_errors[0]
  to   = aws_cloudwatch_metric_alarm.lambda["discovery-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.discovery_throttles[0]
  to   = aws_cloudwatch_metric_alarm.lambda["discovery-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda["discovery-errors"]
  to   = aws_cloudwatch_metric_alarm.this["discovery-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda["discovery-throttles"]
  to   = aws_cloudwatch_metric_alarm.this["discovery-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda["manager-errors"]
  to   = aws_cloudwatch_metric_alarm.this["manager-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda["manager-throttles"]
  to   = aws_cloudwatch_metric_alarm.this["manager-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda["dispatcher-errors"]
  to   = aws_cloudwatch_metric_alarm.this["dispatcher-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda["dispatcher-throttles"]
  to   = aws_cloudwatch_metric_alarm.this["dispatcher-throttles"]
}

################################################################################
# Gateways: connected agents, command deliveries (metric math)
################################################################################

resource "aws_cloudwatch_metric_alarm" "connections_low" {
  count = local.create ? 1 : 0

  alarm_name          = "${var.name}-agents-disconnected"
  alarm_description   = "Fewer agents connected to all gateways together than ${var.min_connected_ratio * 100}% of the ${var.expected_agents} expected: average elkeid_ac_grpc_conn_count per gateway times the running gateways (Container Insights RunningTaskCount)."
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  threshold           = floor(var.expected_agents * var.min_connected_ratio)
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id = "connected"
    # A datapoint per gateway process: the average per process times the processes of a task.
    expression  = "perGateway * ${var.gateway_processes} * gateways"
    label       = "connected agents"
    return_data = true
  }

  metric_query {
    id = "perGateway"
    metric {
      namespace   = local.ns
      metric_name = "elkeid_ac_grpc_conn_count"
      dimensions  = local.dims
      period      = 60
      stat        = "Average"
    }
  }

  metric_query {
    id = "gateways"
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      dimensions  = local.dims
      period      = 60
      stat        = "Average"
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dispatch_failures" {
  count = local.create ? 1 : 0

  alarm_name          = "${var.name}-command-dispatch-failures"
  alarm_description   = "Commands the gateways could not deliver to connected agents (queue_full, timed_out, closed) in 5 minutes: fleetgate_commands_total by result. not_connected is left out (the agent is simply offline)."
  evaluation_periods  = 1
  threshold           = var.dispatch_failure_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id          = "failed"
    expression  = "SUM([${join(", ", values(local.failed_results))}])"
    label       = "failed command deliveries"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = local.failed_results

    content {
      id = metric_query.value
      metric {
        namespace   = local.ns
        metric_name = "fleetgate_commands_total"
        dimensions  = merge(local.dims, { result = metric_query.key })
        period      = 300
        stat        = "Sum"
      }
    }
  }

  tags = var.tags
}

################################################################################
# Task dispatcher: failed command batches and failed passes, from its log
################################################################################

# manager/tasks/dispatcher.ts logs (pino JSON) "command batch failed" (warn) when a
# gateway refused or did not answer a batch, and error-level lines when a chunk pass or a tick
# failed; each such line counts one failure.
resource "aws_cloudwatch_log_metric_filter" "dispatch_failures" {
  count = local.create && var.dispatcher_log_group_name != "" ? 1 : 0

  name           = "${var.name}-dispatcher-failures"
  log_group_name = var.dispatcher_log_group_name
  pattern        = "{ ($.msg = \"command batch failed\") || ($.level >= 50) }"

  metric_transformation {
    name          = local.dispatcher_metric
    namespace     = var.metrics_namespace
    value         = "1"
    default_value = "0"
    unit          = "Count"
  }
}

################################################################################
# Kafka: each broker's disk (the offline partitions alarm is above)
################################################################################

resource "aws_cloudwatch_metric_alarm" "kafka_disk" {
  count = local.create && var.kafka_cluster_name != "" ? var.kafka_broker_count : 0

  alarm_name          = "${var.name}-kafka-broker-${count.index + 1}-disk"
  alarm_description   = "Broker ${count.index + 1}'s data volume is more than 80% full: raise broker_volume_size_gib or lower retention_hours."
  namespace           = "AWS/Kafka"
  metric_name         = "KafkaDataLogsDiskUsed"
  dimensions          = { "Cluster Name" = var.kafka_cluster_name, "Broker ID" = tostring(count.index + 1) }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  tags = var.tags
}

################################################################################
# Dashboard
################################################################################

resource "aws_cloudwatch_dashboard" "this" {
  count = local.create ? 1 : 0

  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = concat(local.function_widgets, [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Connected agents: all gateways, per gateway (average), busiest gateway"
          region = data.aws_region.current.id
          period = 60
          metrics = [
            concat([local.ns, "elkeid_ac_grpc_conn_count"], local.gw_dims_flat, [{ id = "m1", stat = "Average", label = "per gateway (average)" }]),
            concat([local.ns, "elkeid_ac_grpc_conn_count"], local.gw_dims_flat, [{ stat = "Maximum", label = "busiest gateway" }]),
            concat(["ECS/ContainerInsights", "RunningTaskCount"], local.gw_dims_flat, [{ id = "m2", stat = "Average", visible = false }]),
            [{ expression = "m1 * ${var.gateway_processes} * m2", label = "all gateways", id = "e1", yAxis = "right" }],
          ]
          # Datapoints are per gateway process: the limit of one process.
          annotations = { horizontal = [{ label = "connection limit", value = local.process_max_connections }] }
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Spool: records pending (busiest gateway) and gateways spooling"
          region = data.aws_region.current.id
          period = 60
          metrics = [
            concat([local.ns, "fleetgate_spool_pending_records"], local.gw_dims_flat, [{ stat = "Maximum", label = "pending records" }]),
            concat([local.ns, "fleetgate_ingest_spooling"], local.gw_dims_flat, [{ stat = "Sum", label = "spooling (task scrapes)", yAxis = "right" }]),
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Records received and Kafka send failures"
          region = data.aws_region.current.id
          period = 60
          stat   = "Sum"
          metrics = [
            concat([local.ns, "fleetgate_records_received_total"], local.gw_dims_flat, [{ label = "records / min" }]),
            concat([local.ns, "fleetgate_kafka_send_failures_total"], local.gw_dims_flat, [{ label = "Kafka send failures", yAxis = "right" }]),
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "Command deliveries by result"
          region = data.aws_region.current.id
          period = 300
          stat   = "Sum"
          metrics = [
            for r in ["sent", "not_connected", "queue_full", "timed_out", "closed"] :
            concat([local.ns, "fleetgate_commands_total"], local.gw_dims_flat, ["result", r])
          ]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title  = "Balancer: active flows, new flows, unhealthy gateways"
          region = data.aws_region.current.id
          period = 60
          metrics = [
            ["AWS/NetworkELB", "ActiveFlowCount", "LoadBalancer", var.load_balancer_arn_suffix, { stat = "Average" }],
            ["AWS/NetworkELB", "NewFlowCount", "LoadBalancer", var.load_balancer_arn_suffix, { stat = "Sum" }],
            ["AWS/NetworkELB", "UnHealthyHostCount", "LoadBalancer", var.load_balancer_arn_suffix, "TargetGroup", var.target_group_arn_suffix, { stat = "Maximum", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 18, width = 12, height = 6
        properties = {
          title  = "Task dispatcher: runs, failed runs, failed deliveries, run duration"
          region = data.aws_region.current.id
          period = 300
          metrics = [
            ["AWS/Lambda", "Invocations", "FunctionName", var.dispatcher_function_name, { stat = "Sum" }],
            ["AWS/Lambda", "Errors", "FunctionName", var.dispatcher_function_name, { stat = "Sum" }],
            [var.metrics_namespace, local.dispatcher_metric, { stat = "Sum", label = "failed deliveries and passes" }],
            ["AWS/Lambda", "Duration", "FunctionName", var.dispatcher_function_name, { stat = "Maximum", yAxis = "right" }],
          ]
        }
      },
    ])
  })
}
