package pushsvc

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/broker"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(broker.IgnoreLeak))
}
