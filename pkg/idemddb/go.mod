module github.com/acme/idemcheckout/pkg/idemddb

go 1.26.0

require (
	github.com/acme/idemcheckout/ddblocal v0.0.0-00010101000000-000000000000
	github.com/aws/aws-lambda-go v1.55.1
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/aws/aws-sdk-go-v2/service/dynamodb v1.74.0
	github.com/aws/smithy-go v1.28.9
)

require (
	github.com/aws/aws-sdk-go-v2/internal/configsources v1.5.12 // indirect
	github.com/aws/aws-sdk-go-v2/internal/endpoints/v2 v2.8.12 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/accept-encoding v1.13.25 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/endpoint-discovery v1.13.12 // indirect
)

// The engine test helpers, required by this module's tests only: a user's
// build never compiles them, and this replace applies only here.
replace github.com/acme/idemcheckout/ddblocal => ../../ddblocal
