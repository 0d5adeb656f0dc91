# mk/node.mk — real STOMP clients from npm (stompjs over sockjs-client on
# every SockJS transport Node supports, and over ws) against `pushgate dev`.

.PHONY: test-node

## test-node: stompjs + sockjs-client against a fresh `pushgate dev`
test-node:
	test/node/run.sh
