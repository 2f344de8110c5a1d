package boltstore

// SetSplitTx makes s the deliberately broken store: what belongs in one
// transaction is committed in several (crash_test.go must catch it).
func SetSplitTx(s *Store) { s.splitTx = true }
