package relay

// RegistryEvent is what travels on RegistryDestination, as JSON. Edges
// announce the users they hold; pushsvc instances keep the registry and
// send markers to order registry changes before the pushes they resolve.
type RegistryEvent struct {
	// Kind is one of the RegistryKind constants.
	Kind string `json:"kind"`
	// Edge is the announcing edge's id (deltas and snapshots).
	Edge string `json:"edge,omitempty"`
	// Users maps user names to the number of sessions the edge holds for
	// them: absolute counts, so a repeated or reordered announcement cannot
	// drift. Zero means the user left the edge.
	Users map[string]int `json:"users,omitempty"`
	// Snapshot identifies a snapshot; its Parts arrive in order, Part
	// counting from 1. The edge's state is the union of all parts.
	Snapshot uint64 `json:"snapshot,omitempty"`
	Part     int    `json:"part,omitempty"`
	Parts    int    `json:"parts,omitempty"`
	// IntervalMillis is the edge's snapshot interval; pushsvc forgets an
	// edge that stays silent for three of them.
	IntervalMillis int64 `json:"interval_ms,omitempty"`
	// Marker identifies a pushsvc ordering marker.
	Marker string `json:"marker,omitempty"`
}

// Registry event kinds.
const (
	// RegistryDelta carries changed users of one edge.
	RegistryDelta = "delta"
	// RegistrySnapshot carries one part of an edge's full user set.
	RegistrySnapshot = "snapshot"
	// RegistryBye tells that an edge is shutting down and holds no one.
	RegistryBye = "bye"
	// RegistryMarker is a pushsvc's ordering marker; others ignore it.
	RegistryMarker = "marker"
)

// MaxSnapshotUsers bounds the users of one snapshot part, keeping each
// registry message far below broker frame limits.
const MaxSnapshotUsers = 500

// OrderKeyRegistry pins registry messages of one process to one broker
// connection, so they reach the broker in the order they were sent.
const OrderKeyRegistry = "registry"
