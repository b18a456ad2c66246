package checkout

import (
	"math"
	"math/bits"
	"strings"
)

// iso4217 lists the active ISO 4217 currency codes that money can be paid
// in: fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW), precious
// metals, SDRs, bond-market units and the test/no-currency codes (X**
// except the CFA francs, the East Caribbean dollar, the Caribbean guilder
// and the CFP franc) are left out. A constant, so it cannot be modified.
const iso4217 = "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD " +
	"CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF " +
	"GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP " +
	"LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB " +
	"PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL " +
	"THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR " +
	"ZMW ZWG"

// ValidCurrency reports whether code is an ISO 4217 alphabetic code (three
// uppercase letters A–Z) of a currency in circulation.
func ValidCurrency(code string) bool {
	if len(code) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if code[i] < 'A' || code[i] > 'Z' {
			return false
		}
	}
	// Codes in the list are separated by single spaces, so three letters
	// can only match one whole code.
	return strings.Contains(iso4217, code)
}

// mulAmount returns q×p for non-negative q and p, and false when the
// product does not fit in an int64.
func mulAmount(q, p int64) (int64, bool) {
	if q < 0 || p < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(q), uint64(p))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// addAmount returns a+b for non-negative a and b, and false when the sum
// does not fit in an int64.
func addAmount(a, b int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	sum, carry := bits.Add64(uint64(a), uint64(b), 0)
	if carry != 0 || sum > math.MaxInt64 {
		return 0, false
	}
	return int64(sum), true
}
