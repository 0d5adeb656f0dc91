#!/usr/bin/env bash
# Starts (start) or stops (stop) a private RabbitMQ node for the benchmarks,
# next to the shared one: node bench@localhost, AMQP 5673, STOMP 61623,
# web-stomp 15684, its own data under $RMQ_DIR, and its file-descriptor limit raised
# to the hard limit (the shared node's 1,024 is too few for 10,000 web-stomp sessions).
# Benchmarks then measure a broker that only they use.
#
# Its Erlang schedulers do not busy-wait (+sbwt none, and the same for the
# dirty schedulers), as RabbitMQ's runtime guide advises where the broker
# shares its CPUs: on these 2-core machines a spinning scheduler takes the
# CPU that the load generator, the edges and pushsvc need, and at 5,000
# pushes/s RabbitMQ showed as much CPU as when saturated. Every system that
# uses RabbitMQ in a run (the baselines too) gets the same node.
# RMQ_BUSY_WAIT=default keeps the runtime's default.
set -euo pipefail
RMQ_DIR=${RMQ_DIR:-/tmp/pushgate-bench-rabbitmq}
NODE=bench@localhost
export RABBITMQ_NODENAME=$NODE
ctl() { su rabbitmq -s /bin/sh -c "HOME=/var/lib/rabbitmq RABBITMQ_NODENAME=$NODE /usr/lib/rabbitmq/bin/rabbitmqctl $*"; }

case "${1:-start}" in
start)
	if ctl -q status >/dev/null 2>&1; then echo "rabbitmq-private: $NODE already running" >&2; exit 0; fi
	busy_wait='+sbwt none +sbwtdcpu none +sbwtdio none'
	[ "${RMQ_BUSY_WAIT:-none}" = default ] && busy_wait=
	mkdir -p "$RMQ_DIR"/{mnesia,log}
	cat >"$RMQ_DIR/rabbitmq.conf" <<CONF
listeners.tcp.local = 127.0.0.1:5673
stomp.listeners.tcp.1 = 127.0.0.1:61623
web_stomp.tcp.port = 15684
web_stomp.tcp.ip = 127.0.0.1
web_stomp.ws_opts.idle_timeout = 3600000
loopback_users = none
vm_memory_high_watermark.relative = 0.6
CONF
	echo '[rabbitmq_stomp,rabbitmq_web_stomp].' >"$RMQ_DIR/enabled_plugins"
	chown -R rabbitmq:rabbitmq "$RMQ_DIR"
	# As many descriptors as allowed (the hard limit may be fixed by the container).
	ulimit -Hn 200000 2>/dev/null || true
	ulimit -n "$(ulimit -Hn)"
	# setpriv, not su: su's PAM session would reset the limit to 1,024.
	setpriv --reuid rabbitmq --regid rabbitmq --init-groups /bin/sh -c "cd /var/lib/rabbitmq; HOME=/var/lib/rabbitmq \
		RABBITMQ_NODENAME=$NODE RABBITMQ_NODE_PORT=5673 RABBITMQ_DIST_PORT=25673 \
		RABBITMQ_MNESIA_BASE=$RMQ_DIR/mnesia RABBITMQ_LOG_BASE=$RMQ_DIR/log \
		RABBITMQ_CONFIG_FILE=$RMQ_DIR/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$RMQ_DIR/enabled_plugins \
		RABBITMQ_PID_FILE=$RMQ_DIR/pid RABBITMQ_SERVER_ERL_ARGS='+Q 262144 +P 2097152 $busy_wait' \
		/usr/lib/rabbitmq/bin/rabbitmq-server -detached" >"$RMQ_DIR/startup.log" 2>&1
	for _ in $(seq 120); do
		if (exec 3<>/dev/tcp/127.0.0.1/61623) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/15684) 2>/dev/null; then
			echo "rabbitmq-private: $NODE up (STOMP 127.0.0.1:61623, web-stomp ws://127.0.0.1:15684/ws)" >&2
			exit 0
		fi
		sleep 0.5
	done
	echo "rabbitmq-private: $NODE did not start; see $RMQ_DIR/log and $RMQ_DIR/startup.log" >&2
	exit 1
	;;
stop)
	ctl -q stop >/dev/null 2>&1 || true
	;;
pid)
	cat "$RMQ_DIR/pid"
	;;
*)
	echo "usage: $0 start|stop|pid" >&2
	exit 2
	;;
esac
