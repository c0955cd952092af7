package licensing

import (
	"cmp"
	"context"
	"slices"

	"connectrpc.com/connect"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/services/internal/rpcerror"
)

// WatchLicenceOrders streams a business's licence orders: first each order
// as it is now (ordered by id), then every order again each time it
// changes, until the client cancels or the deadline passes.
func (s *Service) WatchLicenceOrders(ctx context.Context, req *connect.Request[licensingv1.WatchLicenceOrdersRequest], stream *connect.ServerStream[licensingv1.WatchLicenceOrdersResponse]) error {
	business := req.Msg.GetBusinessId()
	if business == "" {
		return rpcerror.InvalidArgument(rpcerror.Violation("business_id", "required"))
	}
	var seen uint64 // every change up to this version has been sent
	for {
		s.mu.Lock()
		changes := s.changesLocked(business, seen)
		seen = s.seq
		changed := s.changed
		s.mu.Unlock()
		for _, e := range changes {
			if err := stream.Send(&licensingv1.WatchLicenceOrdersResponse{Order: e.order}); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// changesLocked returns the business's orders changed after version since,
// the first time (since 0) ordered by id, then in the order of the changes.
func (s *Service) changesLocked(business string, since uint64) []*entry {
	var changes []*entry
	for _, e := range s.orders {
		if e.version > since && e.order.GetBusinessId() == business {
			changes = append(changes, e)
		}
	}
	if since == 0 {
		slices.SortFunc(changes, func(a, b *entry) int { return cmp.Compare(a.order.GetId(), b.order.GetId()) })
	} else {
		slices.SortFunc(changes, func(a, b *entry) int { return cmp.Compare(a.version, b.version) })
	}
	return changes
}
