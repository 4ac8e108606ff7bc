package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// Listener hands each version published by any instance on the database
// to Version, as soon as its transaction commits. After every (re)connect
// it calls Reconcile, once it is listening again, so that a version
// published while the connection was down is not missed: the caller reads
// every scope's current version there.
type Listener struct {
	URL       string
	Version   func(scope string, version int64)
	Reconcile func(ctx context.Context) error
	// LogError is told of lost connections and bad notifications.
	LogError func(err error)
	// ReconnectDelay is the wait before connecting again (default 1 s).
	ReconnectDelay time.Duration
}

// Listen runs until ctx ends, connecting again whenever the connection is
// lost.
func (l *Listener) Listen(ctx context.Context) error {
	delay := l.ReconnectDelay
	if delay <= 0 {
		delay = time.Second
	}
	pl := &pgxlisten.Listener{
		Connect:        func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, l.URL) },
		ReconnectDelay: delay,
		LogError: func(_ context.Context, err error) {
			if l.LogError != nil {
				l.LogError(err)
			}
		},
	}
	pl.Handle(Channel, handler{l})
	return pl.Listen(ctx)
}

type handler struct{ l *Listener }

func (h handler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	scope, version, err := ParseNotification(n.Payload)
	if err != nil {
		return err
	}
	h.l.Version(scope, version)
	return nil
}

// HandleBacklog runs once listening starts, after each connect.
func (h handler) HandleBacklog(ctx context.Context, _ string, _ *pgx.Conn) error {
	if h.l.Reconcile == nil {
		return nil
	}
	return h.l.Reconcile(ctx)
}
