package sdk

import "sync"

// eventQueue delivers acknowledgement and drop notices to the caller's
// callbacks from one goroutine, in the order they were queued, so that a slow
// callback never blocks the NATS client or the sender.
type eventQueue struct {
	onAck  func(AckEvent)
	onDrop func(Dropped)

	mu     sync.Mutex
	cond   *sync.Cond
	items  []any // AckEvent or Dropped
	closed bool
	done   chan struct{}
}

func newEventQueue(onAck func(AckEvent), onDrop func(Dropped)) *eventQueue {
	q := &eventQueue{onAck: onAck, onDrop: onDrop, done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	go q.run()
	return q
}

func (q *eventQueue) push(item any) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, item)
		q.cond.Signal()
	}
	q.mu.Unlock()
}

func (q *eventQueue) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.items) == 0 {
			q.mu.Unlock()
			return
		}
		item := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		switch v := item.(type) {
		case AckEvent:
			if q.onAck != nil {
				q.onAck(v)
			}
		case Dropped:
			if q.onDrop != nil {
				q.onDrop(v)
			}
		}
	}
}

// close delivers what is queued, then stops.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Signal()
	q.mu.Unlock()
	<-q.done
}
