// Package integration runs pushgate's edges and push service together
// against real brokers: the embedded one and the local RabbitMQ.
package integration

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/broker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(broker.IgnoreLeak))
}
