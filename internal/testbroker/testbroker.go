// Package testbroker gives tests a STOMP broker: the embedded one, or the
// local RabbitMQ with its STOMP plugin.
package testbroker

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/broker"
)

// RabbitMQAddr is where tests expect RabbitMQ's STOMP plugin;
// PUSHGATE_TEST_RABBITMQ overrides it (host:port).
func RabbitMQAddr() string {
	if a := os.Getenv("PUSHGATE_TEST_RABBITMQ"); a != "" {
		return a
	}
	return "127.0.0.1:61613"
}

// RabbitMQURL returns the broker URL of the local RabbitMQ. When the broker
// cannot be reached the test is skipped, except in CI (CI=true), where it
// fails: CI must never silently skip the RabbitMQ tests.
func RabbitMQURL(t testing.TB) string {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("RabbitMQ tests skipped in -short mode")
	}
	addr := RabbitMQAddr()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		msg := fmt.Sprintf("RabbitMQ STOMP not reachable at %s (%v); run scripts/rabbitmq.sh", addr, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c.Close()
	return "stomp://guest:guest@" + addr + "/"
}

// Embedded starts an embedded broker on an ephemeral loopback port, closed
// when the test ends.
func Embedded(t testing.TB) *broker.Embedded {
	t.Helper()
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Each runs fn as two subtests, "embedded" and "rabbitmq", each with the
// URL of its broker.
func Each(t *testing.T, fn func(t *testing.T, brokerURL string)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) { fn(t, Embedded(t).URL()) })
	t.Run("rabbitmq", func(t *testing.T) { fn(t, RabbitMQURL(t)) })
}

// RestartEmbedded closes b and starts a new broker on the same address.
func RestartEmbedded(t testing.TB, b *broker.Embedded, down time.Duration) *broker.Embedded {
	t.Helper()
	addr := b.Addr()
	b.Close()
	time.Sleep(down)
	var nb *broker.Embedded
	var err error
	for i := 0; i < 50; i++ {
		if nb, err = broker.Start(addr, nil); err == nil {
			t.Cleanup(func() { nb.Close() })
			return nb
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("restart embedded broker on %s: %v", addr, err)
	return nil
}

// Rabbitmqctl runs rabbitmqctl with args and returns its output.
func Rabbitmqctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", append([]string{"-q"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
