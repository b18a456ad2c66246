package devstack

import (
	"fmt"
	"os/exec"

	"github.com/acme/idemcheckout/local/devstack/gateway"
	"github.com/acme/idemcheckout/local/devstack/template"
)

// inspectHints are the banner's ready-to-paste commands to look inside the
// tables: the AWS CLI's scan, and idemctl (cmd/idemctl) for
// the idempotency records, which needs nothing but Go.
func inspectHints(endpoint, region string, tm *template.Template) []string {
	tables := tm.Tables()
	if len(tables) == 0 {
		return nil
	}
	name := tm.TableName(tables[0].ID)
	var idem, route, iss string
	for _, f := range tm.Functions() {
		if v, ok := f.EnvStrings()["IDEMPOTENCY_TABLE"]; ok && v != "" && idem == "" {
			idem = v
		}
	}
	for _, r := range mustRoutes(tm) {
		if r.Event.HTTP.Method == "POST" && route == "" {
			route = r.RouteKey()
			if r.Authorizer != nil && r.Authorizer.JWT != nil {
				iss = r.Authorizer.JWT.Issuer
			}
		}
	}
	// AWS_REGION for the Go SDK (idemctl), AWS_DEFAULT_REGION for the aws
	// CLI (version 1 reads only that one).
	creds := fmt.Sprintf("AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=%s AWS_DEFAULT_REGION=%s", region, region)
	cli := "inspect a table:   " + creds + " aws dynamodb scan --endpoint-url " + endpoint + " --table-name " + name
	if _, err := exec.LookPath("aws"); err != nil {
		cli += "   (the AWS CLI is not installed here; idemctl below needs only Go)"
	}
	out := []string{cli}
	if idem != "" {
		base := creds + " AWS_ENDPOINT_URL_DYNAMODB=" + endpoint + " go run ./cmd/idemctl -table " + idem
		out = append(out, "idempotency records: "+base+" stuck")
		if route != "" {
			show := base + " show -route '" + route + "'"
			if iss != "" {
				show += " -iss " + iss
			}
			out = append(out, "                     "+show+" -sub dev-user -client-key order-1")
		}
	}
	return out
}

// mustRoutes is gateway.Routes for a template Start already accepted.
func mustRoutes(tm *template.Template) []*gateway.Route {
	r, _ := gateway.Routes(tm)
	return r
}
