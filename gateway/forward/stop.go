package forward

import "sync"

// stoppable is a call in flight that the stop ends: a *callBody, or a
// *grpcConn.
type stoppable interface{ stop() }

// stopper ends a handler's calls in flight when the stop channel given
// to WithStop is closed, and refuses later ones.
type stopper struct {
	mu      sync.Mutex
	calls   map[stoppable]struct{}
	stopped bool
}

// newStopper returns a stopper that watches stop, with one goroutine that
// ends when stop is closed.
func newStopper(stop <-chan struct{}) *stopper {
	s := &stopper{calls: make(map[stoppable]struct{})}
	go func() {
		<-stop
		s.stopAll()
	}()
	return s
}

// add registers a call in flight, and reports false if the handler has
// stopped: the call must be refused.
func (s *stopper) add(b stoppable) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.calls[b] = struct{}{}
	return true
}

// remove unregisters a call that has ended.
func (s *stopper) remove(b stoppable) {
	s.mu.Lock()
	delete(s.calls, b)
	s.mu.Unlock()
}

func (s *stopper) stopAll() {
	s.mu.Lock()
	s.stopped = true
	calls := s.calls
	s.calls = nil
	s.mu.Unlock()
	for b := range calls {
		b.stop()
	}
}
