package allowlist

// The sign-off rule: from a site's revisions, its departments' decisions
// and the quorum, which domains scope common lists and what status the
// site has. Scopes (signoff.go) and the Publisher (publish.go) apply it
// to every site at each publication.

// PublishedDomains returns the domains of a site that scope common lists:
// those of its latest revision approved by at least quorum departments, or
// none.
func PublishedDomains(s Site, quorum int) []string {
	if quorum < 1 {
		quorum = 1
	}
	if !live(s) {
		return nil
	}
	for rev := s.Revision; rev >= 1; rev-- {
		domains, ok := s.History[rev]
		if !ok {
			continue
		}
		count := 0
		for _, so := range s.Signoffs {
			if so.Decision == DecisionApprove && covers(s.History[so.Revision], domains) {
				count++
			}
		}
		if count >= quorum || consensus(s, domains) {
			return domains
		}
	}
	return nil
}

// siteStatus returns the status a site should have: suspended and withdrawn
// sites keep theirs; otherwise a site is approved while common lists it.
func siteStatus(s Site, quorum int) string {
	return statusOf(s, PublishedDomains(s, quorum))
}

// statusOf is siteStatus given the site's published domains.
func statusOf(s Site, published []string) string {
	switch {
	case !live(s):
		return s.Status
	case len(published) > 0:
		return StatusApproved
	default:
		return StatusProposed
	}
}

// consensus reports whether lazy consensus puts domains on common: the
// revision that reached it covers them and nobody objects.
func consensus(s Site, domains []string) bool {
	if s.Consensus == 0 || !covers(s.History[s.Consensus], domains) {
		return false
	}
	for _, so := range s.Signoffs {
		if so.Decision == DecisionObject {
			return false
		}
	}
	return true
}

func live(s Site) bool { return s.Status != StatusSuspended && s.Status != StatusWithdrawn }
