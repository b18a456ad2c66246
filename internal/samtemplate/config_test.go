package samtemplate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/acme/idemcheckout/internal/checkout/lambdaenv"
	"github.com/acme/idemcheckout/internal/subscriptions"
)

// envNames are the variables the functions read: lambdaenv's, the
// subscription service's table, and the SDK's service endpoint (read by config.LoadDefaultConfig in
// lambdaenv.NewDynamoDB; empty in AWS, set for local runs).
var envNames = []string{
	lambdaenv.EnvIdempotencyTable, lambdaenv.EnvRetention, lambdaenv.EnvOrdersTable,
	lambdaenv.EnvPaymentsTable, lambdaenv.EnvReceiptsTable, lambdaenv.EnvPSPLatency, lambdaenv.EnvLogLevel, lambdaenv.EnvVoidAfter,
	lambdaenv.EnvPaymentProvider, lambdaenv.EnvStripeSecret, subscriptions.EnvTable, "AWS_ENDPOINT_URL_DYNAMODB",
}

func parameters(t *testing.T, tpl *Template) map[string]map[string]any {
	t.Helper()
	raw, _ := tpl.Raw["Parameters"].(map[string]any)
	out := map[string]map[string]any{}
	for name, v := range raw {
		p, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("parameter %s is not a mapping", name)
		}
		out[name] = p
	}
	return out
}

// paramProblem says why value is not a valid value of parameter p, or "".
func paramProblem(p map[string]any, value string) string {
	if p["Type"] == "Number" {
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return "not a number"
		}
		if lo, ok := p["MinValue"].(int); ok && n < float64(lo) {
			return fmt.Sprintf("below MinValue %d", lo)
		}
		if hi, ok := p["MaxValue"].(int); ok && n > float64(hi) {
			return fmt.Sprintf("above MaxValue %d", hi)
		}
	}
	if av, ok := p["AllowedValues"].([]any); ok && !slices.ContainsFunc(av, func(a any) bool { return fmt.Sprint(a) == value }) {
		return fmt.Sprintf("not one of %v", av)
	}
	if pat, ok := p["AllowedPattern"].(string); ok && !regexp.MustCompile(pat).MatchString(value) {
		return fmt.Sprintf("does not match %s", pat)
	}
	return ""
}

// getenvFor resolves fn's environment with the given parameter values:
// !Ref to a parameter gives its value, !Ref to a resource a stand-in name.
func getenvFor(fn Function, params map[string]string) func(string) string {
	return func(name string) string {
		v, ok := fn.Env()[name]
		if !ok {
			return ""
		}
		if ref, ok := RefTarget(v); ok {
			if pv, ok := params[ref]; ok {
				return pv
			}
			return "stack-" + ref
		}
		return fmt.Sprint(v)
	}
}

func requiredTables(fn Function) []string {
	var req []string
	for _, name := range []string{lambdaenv.EnvOrdersTable, lambdaenv.EnvPaymentsTable, lambdaenv.EnvReceiptsTable, subscriptions.EnvTable} {
		if _, ok := fn.Env()[name]; ok {
			req = append(req, name)
		}
	}
	return req
}

func defaults(params map[string]map[string]any) map[string]string {
	out := map[string]string{}
	for name, p := range params {
		if d, ok := p["Default"]; ok {
			out[name] = fmt.Sprint(d)
		}
	}
	return out
}

// TestFunctionsAcceptEveryParameterValue: every boundary value the template
// lets a deploy choose (Default, MinValue, MaxValue, AllowedValues) is one
// the functions' configuration loader accepts, so a valid deploy never
// yields functions that refuse to start; and every variable the template
// sets is one the functions read.
func TestFunctionsAcceptEveryParameterValue(t *testing.T) {
	tpl, _ := loadRepoTemplate(t)
	params := parameters(t, tpl)
	for _, fn := range tpl.Functions() {
		for name := range fn.Env() {
			if !slices.Contains(envNames, name) {
				t.Errorf("%s sets %s, which the functions do not read (lambdaenv reads %v)", fn.ID, name, envNames)
			}
		}
		for pname, p := range params {
			var values []string
			for _, k := range []string{"Default", "MinValue", "MaxValue"} {
				if v, ok := p[k]; ok {
					values = append(values, fmt.Sprint(v))
				}
			}
			if av, ok := p["AllowedValues"].([]any); ok {
				for _, v := range av {
					values = append(values, fmt.Sprint(v))
				}
			}
			for _, v := range values {
				vals := defaults(params)
				vals[pname] = v
				if _, err := lambdaenv.Load(getenvFor(fn, vals), requiredTables(fn)...); err != nil {
					t.Errorf("%s with %s=%s: the function would not start: %v", fn.ID, pname, v, err)
				}
			}
		}
	}
}

var overrideRE = regexp.MustCompile(`"([A-Za-z0-9]+)=([^"]*)"`)

// TestSamconfigOverrides: the parameter_overrides in samconfig.toml name
// template parameters, and their values (placeholders <...> aside) are
// valid for the template and accepted by the functions.
func TestSamconfigOverrides(t *testing.T) {
	tpl, e := loadRepoTemplate(t)
	params := parameters(t, tpl)
	data, err := os.ReadFile(filepath.Join(e.Root, "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string]string{}
	section := ""
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		for _, m := range overrideRE.FindAllStringSubmatch(line, -1) {
			if sections[section] == nil {
				sections[section] = map[string]string{}
			}
			sections[section][m[1]] = m[2]
		}
	}
	for _, want := range []string{"[default.deploy.parameters]", "[default.local_start_api.parameters]"} {
		if len(sections[want]) == 0 {
			t.Errorf("samconfig.toml: no parameter_overrides in %s", want)
		}
	}
	for section, overrides := range sections {
		vals := defaults(params)
		for name, v := range overrides {
			p, ok := params[name]
			if !ok {
				t.Errorf("%s: %s is not a template parameter", section, name)
				continue
			}
			if strings.HasPrefix(v, "<") {
				continue // placeholder to fill in before deploying
			}
			if msg := paramProblem(p, v); msg != "" {
				t.Errorf("%s: %s=%s is %s", section, name, v, msg)
			}
			vals[name] = v
		}
		for _, fn := range tpl.Functions() {
			if _, err := lambdaenv.Load(getenvFor(fn, vals), requiredTables(fn)...); err != nil {
				t.Errorf("%s: %s would not start: %v", section, fn.ID, err)
			}
		}
	}
}
