// Package allowlist is the registry's domain core: sites and their
// patterns, the departments' sign-offs and the rule that turns them into
// published lists, the formats those lists are rendered in, and the types
// and errors every store, the API, the pages and the resolver share. It
// does no I/O of its own and imports no HTTP, SQL or DNS package (make
// lint checks this); besides the standard library it uses
// golang.org/x/net (IDNA and the public suffix list, which bring
// golang.org/x/text) and, through package list, filippo.io/edwards25519.
//
// The list format itself (the signed bytes, their reader, patcher, signer
// and verifier, and the header names and diff body the API and the
// resolver agree on) is package allowlist/list.
//
// Files by job:
//
//   - site.go, pattern.go, validate.go: sites, roles, statuses and
//     decisions; domain patterns in normal form (ParsePattern); free-text
//     and field validation.
//   - rule.go: the sign-off rule (which domains common lists, a site's
//     status).
//   - signoff.go: Scopes, the content of every scope from the sites.
//   - governance.go: requests, approval expiry, lazy consensus, queues.
//   - publish.go: the write path's publication step (Publisher).
//   - list.go: List, a published version, and its construction and
//     decoding over package list (NewList, ParseList, DecodeList,
//     ReadList, PatchList).
//   - match.go: the compiled Matcher a resolver answers from.
//   - network.go: endpoints (networks and handling) and schema-2 bodies.
//   - render.go, render_endpoints.go: the published formats.
//   - commonground.go: the common-ground comparison across departments.
//   - timestamp.go: the signed freshness statement.
//   - tsig.go: zone-transfer keys.
//   - audit.go: the hash-chained audit log.
//   - usage.go, usagestore.go: usage reports from departments' resolvers
//     (the wire body and its validation), the UsageStore a store may
//     implement, who sees what (PublicRefused) and the review flag
//     (UsageSince, UsageStale); docs/privacy.md.
//   - registry.go: the registry's services by noun (DepartmentService,
//     TokenService, SiteService, SignoffService, RequestService,
//     AuditService, ListService, CatalogueService), the Registry that
//     embeds them all and that the stores implement, Services and
//     ServicesOf (the registry by noun, as the API and the pages hold
//     it), Subscriber, Version, Actor, and the defaults the registry owns
//     (DefaultQuorum, MaxPage).
//   - error.go: Error and its codes.
package allowlist
