# The operator console: the manager Lambda serves it from its own zip (dist/console, put there by
# npm run build:lambda) on every path its HTTP API's $default route sends it, so the console and
# the API share one origin and nothing more is deployed. Behind API Gateway there is no
# WebSocket: the console polls GET /api/fleet/live (docs/deploy.md, "The operator console").
output "console_url" {
  description = "URL of the operator console (served by the manager API, same origin)."
  value       = "${module.manager.api_endpoint}/"
}
