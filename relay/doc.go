// Package relay is the broker side shared by edges and pushsvc: a small pool
// of STOMP connections to RabbitMQ's STOMP plugin (or the embedded broker),
// reference-counted subscriptions fanned out to local handlers, confirmed
// (receipted, pipelined) sends that travel as one batch when several queue
// for one destination (publisher.go, batch.go), and reconnect with
// re-subscribe.
//
// It also owns the broker mapping (names.go): which broker destination a
// client topic, an edge or the user registry uses. Clients never see these
// names, and nothing a client sends reaches the broker before it has been
// validated and mapped here, because any ERROR from RabbitMQ closes a shared
// connection and every subscription on it.
package relay
