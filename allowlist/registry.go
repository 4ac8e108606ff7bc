package allowlist

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/cross-gov/allowlist/allowlist/list"
)

// Actor is who is making a change: recorded in the audit log and used for
// authorisation. Department is set for owners, and for readers bound to
// a department (a resolver sending usage reports).
type Actor struct {
	TokenID    int64
	Name       string
	Role       string
	Department string
}

// String is the actor as the audit log records it.
func (a Actor) String() string {
	switch {
	case a.Role == "":
		return "anonymous"
	case a.Department != "":
		return a.Role + ":" + a.Department + ":" + a.Name
	default:
		return a.Role + ":" + a.Name
	}
}

// System is the actor for changes made from the command line.
var System = Actor{Name: "cli", Role: RoleAdmin}

// Token is an API credential. Only a hash of its secret is stored.
type Token struct {
	ID         int64      `json:"id"`
	Role       string     `json:"role"`
	Department string     `json:"department,omitempty"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// SiteInput is a new site as a proposer describes it.
type SiteInput struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Category    string    `json:"category"`
	Description string    `json:"description"`
	Homepage    string    `json:"homepage"`
	Domains     []string  `json:"domains"`
	Networks    []Network `json:"networks"`
	Handling    Handling  `json:"handling"`
	Notes       string    `json:"notes"`
	Owner       Owner     `json:"owner"`
}

// Endpoints returns the input's networks and handling.
func (in SiteInput) Endpoints() Endpoints {
	return Endpoints{Networks: in.Networks, Handling: in.Handling}
}

// SitePatch changes some fields of a site; nil fields stay as they are.
type SitePatch struct {
	Name        *string    `json:"name"`
	Category    *string    `json:"category"`
	Description *string    `json:"description"`
	Homepage    *string    `json:"homepage"`
	Domains     *[]string  `json:"domains"`
	Networks    *[]Network `json:"networks"`
	Handling    *Handling  `json:"handling"`
	Notes       *string    `json:"notes"`
	Owner       *Owner     `json:"owner"`
}

// SiteFilter narrows FindSites. Empty fields match everything; Q matches
// the id, name, description or any domain, case-insensitively.
type SiteFilter struct {
	Status   string
	Category string
	Q        string
}

// Request is a member of staff asking for a tool to be listed.
type Request struct {
	ID         int64     `json:"id"`
	Tool       string    `json:"tool"`
	URL        string    `json:"url"`
	Reason     string    `json:"reason"`
	Department string    `json:"department"`
	Email      string    `json:"email,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// Tracking: Reference is shown once, when the request is made (only
	// its hash is stored); the owners' answer, the site it is linked to.
	Reference  string     `json:"reference,omitempty"`
	Status     string     `json:"status"`
	Answer     string     `json:"answer"`
	Site       string     `json:"site,omitempty"`
	AnsweredBy string     `json:"answered_by,omitempty"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
	Group      string     `json:"group"`
}

// Version is one published version of a scope. Body is the exact signed
// JSON; it is empty where a listing leaves it out.
type Version struct {
	Scope     string    `json:"-"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	SHA256    string    `json:"sha256"`
	Entries   int       `json:"entries"`
	Added     int       `json:"added"`
	Removed   int       `json:"removed"`
	Signature string    `json:"-"`
	// The version's exact bytes: Body whole (as FindVersion reads them), or
	// Head and Content (as a publication hands them out): the bytes before
	// the entries array, and the array itself, which every scope listing
	// the same entries shares rather than holding a copy (85 MB at a
	// million entries). Parts and Whole read either form.
	Body          []byte `json:"-"`
	Head, Content []byte `json:"-"`
	// Changes against the version before, when known (see FindChanges).
	Changes *Changes `json:"-"`
	// Endpoints is the version's endpoint records as canonical JSON (nil:
	// none), and EndpointsSignature signs its schema-2 body (see
	// WithEndpoints).
	Endpoints          []byte `json:"-"`
	EndpointsSignature string `json:"-"`
}

// Parts returns the version's bytes in order, without copying them.
func (v Version) Parts() [][]byte {
	if v.Head == nil {
		return [][]byte{v.Body}
	}
	return [][]byte{v.Head, v.Content, []byte(list.Tail)}
}

// Size returns the number of bytes in the version's body.
func (v Version) Size() int {
	if v.Head == nil {
		return len(v.Body)
	}
	return len(v.Head) + len(v.Content) + len(list.Tail)
}

// Whole returns the version's body in one slice: Body, or a new slice
// joining Head and Content.
func (v Version) Whole() []byte {
	if v.Head == nil {
		return v.Body
	}
	return list.Join(v.Head, v.Content)
}

// Changes are the entries a version added and removed against the version
// before it, each a canonical JSON array of entries (list.EncodeArray).
type Changes struct {
	Added, Removed []byte
	// Endpoints is the JSON of the EndpointChanges, nil when none.
	Endpoints []byte
}

// ScopeInfo is a scope and its current version.
type ScopeInfo struct {
	Scope     string    `json:"scope"`
	Version   int64     `json:"version"`
	SHA256    string    `json:"sha256"`
	Entries   int       `json:"entries"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Latest asks FindVersion for a scope's current version.
const Latest = -1

// Defaults the registry owns: every other package (the stores, the API,
// the command line) takes them from here rather than writing the number
// again.
const (
	// DefaultQuorum is the number of approvals that put a site on the
	// common list when none is configured or stored.
	DefaultQuorum = 2
	// MaxPage is the most entries one call of FindAudit or FindDeliveries
	// returns.
	MaxPage = 1000
	// DefaultDeliveries is how many deliveries FindDeliveries returns when
	// asked for none in particular.
	DefaultDeliveries = 100
)

// The registry's services, one per noun. Each method's doc names the error
// codes it returns (see error.go); any other error is EINTERNAL. Every
// change commits together with the list versions and the audit entry it
// causes. Callers depend on the services they use; a store implements
// them all (Registry).

// DepartmentService keeps departments (each with its scope) and their
// filtering owners' contacts.
type DepartmentService interface {
	// CreateDepartment adds a department and its scope. EINVALID, ECONFLICT.
	CreateDepartment(ctx context.Context, a Actor, d Department) (Department, error)
	// FindDepartments lists departments by id.
	FindDepartments(ctx context.Context) ([]Department, error)
	// FindDepartment returns one department. ENOTFOUND.
	FindDepartment(ctx context.Context, id string) (Department, error)
	// CreateContact adds a filtering owner's contact. EINVALID, ENOTFOUND.
	CreateContact(ctx context.Context, a Actor, c Contact) (Contact, error)
	// FindContacts lists a department's contacts. ENOTFOUND.
	FindContacts(ctx context.Context, department string) ([]Contact, error)
}

// TokenService keeps API credentials and says who holds one.
type TokenService interface {
	// CreateToken stores a new token's hash and returns the secret once.
	// EINVALID, ENOTFOUND (department).
	CreateToken(ctx context.Context, a Actor, t Token) (Token, string, error)
	// FindTokens lists tokens (never secrets).
	FindTokens(ctx context.Context) ([]Token, error)
	// RevokeToken makes a token unusable. ENOTFOUND.
	RevokeToken(ctx context.Context, a Actor, id int64) error
	// Authenticate returns the actor for a secret. EUNAUTHORIZED.
	Authenticate(ctx context.Context, secret string) (Actor, error)
}

// SiteService keeps the catalogue of sites: proposals, changes,
// suspension.
type SiteService interface {
	// CreateSite proposes a site for the actor's department. EINVALID,
	// ECONFLICT.
	CreateSite(ctx context.Context, a Actor, in SiteInput) (Site, error)
	// ProposeSite proposes a site for the actor's department and records
	// that department's approval of it, in one transaction: both or
	// neither. EINVALID, ECONFLICT, ENOTFOUND (the department),
	// EFORBIDDEN (an actor bound to no department).
	ProposeSite(ctx context.Context, a Actor, in SiteInput, comment string) (Site, error)
	// FindSites lists sites by id.
	FindSites(ctx context.Context, f SiteFilter) ([]Site, error)
	// FindSite returns one site. ENOTFOUND.
	FindSite(ctx context.Context, id string) (Site, error)
	// UpdateSite changes a site; new domains wait for a new quorum.
	// EINVALID, ENOTFOUND, ECONFLICT.
	UpdateSite(ctx context.Context, a Actor, id string, p SitePatch) (Site, error)
	// SuspendSite takes a site off every list at once. EINVALID, ENOTFOUND.
	SuspendSite(ctx context.Context, a Actor, id, reason string) (Site, error)
	// ReinstateSite undoes a suspension; the reason, which may be empty,
	// goes in the audit log. EINVALID, ENOTFOUND.
	ReinstateSite(ctx context.Context, a Actor, id, reason string) (Site, error)
}

// SignoffService keeps departments' decisions on sites.
type SignoffService interface {
	// SetSignoff records a department's decision on the site's current
	// revision. EINVALID, ENOTFOUND.
	SetSignoff(ctx context.Context, a Actor, site, department, decision, comment string) (Site, error)
	// DeleteSignoff withdraws a department's decision. ENOTFOUND.
	DeleteSignoff(ctx context.Context, a Actor, site, department string) (Site, error)
}

// RequestService keeps staff requests for tools.
type RequestService interface {
	// CreateRequest records a staff request. EINVALID, ENOTFOUND.
	CreateRequest(ctx context.Context, a Actor, r Request) (Request, error)
	// FindRequests lists requests, newest first (at most MaxPage), for one
	// department or all ("").
	FindRequests(ctx context.Context, department string) ([]Request, error)
}

// AuditService reads the hash-chained audit log.
type AuditService interface {
	// FindAudit lists audit entries after seq, oldest first, at most
	// limit (at most MaxPage; 0 means MaxPage).
	FindAudit(ctx context.Context, after int64, limit int) ([]AuditEntry, error)
	// VerifyAudit checks the whole chain; it returns the first broken seq,
	// or the number of entries checked when the chain is intact.
	VerifyAudit(ctx context.Context) (int64, bool, error)
}

// ListService reads the published, signed list versions.
type ListService interface {
	// FindScopes lists every scope with its current version.
	FindScopes(ctx context.Context) ([]ScopeInfo, error)
	// FindVersion returns a version with its body, or the latest for
	// Latest. ENOTFOUND.
	FindVersion(ctx context.Context, scope string, version int64) (Version, error)
	// FindVersions lists a scope's versions without bodies. ENOTFOUND.
	FindVersions(ctx context.Context, scope string) ([]Version, error)
	// FindChanges returns what version changed against version-1, or
	// false when they were not recorded (versions older than the record).
	FindChanges(ctx context.Context, scope string, version int64) (Changes, bool, error)
	// PublicKey is the key that verifies list signatures.
	PublicKey() ed25519.PublicKey
	// SignTimestamp signs a freshness statement with the list key (see
	// Timestamp). EINVALID for a statement that is not well formed.
	SignTimestamp(t Timestamp) (string, error)
}

// CatalogueService moves a whole registry in and out as a catalogue.
type CatalogueService interface {
	// Import adds a catalogue in one transaction, or nothing. EINVALID,
	// ECONFLICT (field paths such as "sites[3].domains[1]").
	Import(ctx context.Context, a Actor, c Catalogue) error
	// Export returns the catalogue in the form Import reads.
	Export(ctx context.Context) (Catalogue, error)
}

// Registry is every service together: what a store implements
// (allowlist/sqlite, on SQLite or PostgreSQL). Optional services a store
// may also offer are interfaces of their own, found by a checked type
// assertion: UsageStore, Governance, Timers, TSIGStore, Subscriber.
type Registry interface {
	DepartmentService
	TokenService
	SiteService
	SignoffService
	RequestService
	AuditService
	ListService
	CatalogueService
}

// Services is a registry by noun, for a caller that uses several of its
// services (the API, the pages): each field is the one registry, seen as
// that service alone.
type Services struct {
	Departments DepartmentService
	Tokens      TokenService
	Sites       SiteService
	Signoffs    SignoffService
	Requests    RequestService
	Audit       AuditService
	Lists       ListService
}

// ServicesOf returns r's services.
func ServicesOf(r Registry) Services {
	return Services{Departments: r, Tokens: r, Sites: r, Signoffs: r, Requests: r, Audit: r, Lists: r}
}

// Subscriber is a store that tells those who subscribe of each version it
// commits, after the commit: the API's watchers, the zone server, the
// notification timers. A subscriber must not modify the version, and must
// not block.
type Subscriber interface {
	Subscribe(f func(Version))
}

// Catalogue is the YAML seed and export form of a registry: departments
// with their contacts, and sites with their decisions.
type Catalogue struct {
	Departments []CatalogueDepartment `json:"departments" yaml:"departments"`
	Sites       []CatalogueSite       `json:"sites" yaml:"sites"`
}

// CatalogueDepartment is a department in a catalogue.
type CatalogueDepartment struct {
	ID       string    `yaml:"id"`
	Name     string    `yaml:"name"`
	Kind     string    `yaml:"kind"`
	Contacts []Contact `yaml:"contacts,omitempty"`
}

// CatalogueSite is a site in a catalogue. Status is only set for
// suspended or withdrawn sites; otherwise the decisions decide it.
type CatalogueSite struct {
	ID          string    `yaml:"id"`
	Name        string    `yaml:"name"`
	Category    string    `yaml:"category"`
	Description string    `yaml:"description,omitempty"`
	Homepage    string    `yaml:"homepage,omitempty"`
	Domains     []string  `yaml:"domains"`
	Networks    []Network `yaml:"networks,omitempty"`
	Handling    *Handling `yaml:"handling,omitempty"`
	Notes       string    `yaml:"notes,omitempty"`
	// Sources say where the networks were read and when (free text,
	// one line each: "URL (read YYYY-MM-DD)").
	Sources    []string           `yaml:"sources,omitempty"`
	Owner      Owner              `yaml:"owner"`
	ProposedBy string             `yaml:"proposed_by,omitempty"`
	Status     string             `yaml:"status,omitempty"`
	Reason     string             `yaml:"reason,omitempty"`
	Signoffs   []CatalogueSignoff `yaml:"signoffs,omitempty"`
}

// CatalogueSignoff is a decision in a catalogue.
type CatalogueSignoff struct {
	Department string `yaml:"department"`
	Decision   string `yaml:"decision"`
	By         string `yaml:"by,omitempty"`
	Comment    string `yaml:"comment,omitempty"`
	// Domains is set when the decision was made on other domains than
	// the site's current ones (a change still waiting for its quorum).
	Domains []string `yaml:"domains,omitempty"`
	// Endpoints is set likewise when the decision was made on other
	// networks or handling than the site's current ones.
	Endpoints *Endpoints `yaml:"endpoints,omitempty"`
}
