#!/usr/bin/env bash
# Makes sure a local RabbitMQ with the STOMP plugin answers on 127.0.0.1:61613.
# Idempotent: enables the plugin, starts the broker when it is down, waits.
set -euo pipefail

wait_port() { # host port seconds
	local deadline=$((SECONDS + $3))
	while ((SECONDS < deadline)); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
		sleep 0.5
	done
	return 1
}

if ! command -v rabbitmq-server >/dev/null 2>&1; then
	echo "rabbitmq.sh: rabbitmq-server is not installed (apt-get install rabbitmq-server)" >&2
	exit 1
fi
if ! rabbitmqctl -q status >/dev/null 2>&1; then
	echo "rabbitmq.sh: starting RabbitMQ" >&2
	rabbitmq-server -detached
	rabbitmqctl -q wait --timeout 60 "$(ls /var/lib/rabbitmq/mnesia/*.pid 2>/dev/null | head -n 1 || echo /var/lib/rabbitmq/mnesia/rabbit.pid)" >/dev/null 2>&1 || true
	wait_port 127.0.0.1 5672 60 || { echo "rabbitmq.sh: RabbitMQ did not start" >&2; exit 1; }
fi
rabbitmq-plugins -q enable rabbitmq_stomp >/dev/null
if ! wait_port 127.0.0.1 61613 60; then
	echo "rabbitmq.sh: RabbitMQ's STOMP plugin is not listening on 127.0.0.1:61613" >&2
	exit 1
fi
echo "rabbitmq.sh: RabbitMQ STOMP ready on 127.0.0.1:61613" >&2
