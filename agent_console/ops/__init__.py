"""The realtime operator console: queue and routing, the live call model, the operator and worker websockets."""
