package relay

import (
	"testing"

	"github.com/pushgate/pushgate/broker"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(broker.IgnoreLeak))
}
