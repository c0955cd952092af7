package licensing

import (
	"time"

	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The service's fixed catalogue: jurisdictions ordered by code, and the
// licences each kind of business needs in each of them.
var (
	jurisdictions = []*licensingv1.Jurisdiction{
		{Code: "DE-BE", Name: "Berlin"},
		{Code: "GB-LND", Name: "London"},
		{Code: "US-CA", Name: "California"},
		{Code: "US-NY", Name: "New York"},
	}

	requirements = map[string]map[string][]*licensingv1.Requirement{
		"DE-BE": {
			"restaurant": {
				{Id: "de-be-gaststaette", Name: "Gaststättenerlaubnis", Authority: "Bezirksamt", FeeCents: 50000},
				{Id: "de-be-gewerbe", Name: "Gewerbeanmeldung", Authority: "Bezirksamt", FeeCents: 2600},
			},
			"retail": {
				{Id: "de-be-gewerbe", Name: "Gewerbeanmeldung", Authority: "Bezirksamt", FeeCents: 2600},
			},
		},
		"GB-LND": {
			"restaurant": {
				{Id: "gb-lnd-food-registration", Name: "Food Business Registration", Authority: "Local council", FeeCents: 0},
				{Id: "gb-lnd-premises", Name: "Premises Licence", Authority: "Local council", FeeCents: 31500},
			},
			"retail": {
				{Id: "gb-lnd-street-trading", Name: "Street Trading Licence", Authority: "Local council", FeeCents: 12000},
			},
		},
		"US-CA": {
			"restaurant": {
				{Id: "us-ca-food-facility", Name: "Food Facility Health Permit", Authority: "County Environmental Health", FeeCents: 45000},
				{Id: "us-ca-abc-41", Name: "On-Sale Beer and Wine Licence", Authority: "Department of Alcoholic Beverage Control", FeeCents: 70000},
				{Id: "us-ca-seller", Name: "Seller's Permit", Authority: "Department of Tax and Fee Administration", FeeCents: 0},
			},
			"retail": {
				{Id: "us-ca-seller", Name: "Seller's Permit", Authority: "Department of Tax and Fee Administration", FeeCents: 0},
			},
		},
		"US-NY": {
			"restaurant": {
				{Id: "us-ny-food-service", Name: "Food Service Establishment Permit", Authority: "Department of Health and Mental Hygiene", FeeCents: 28000},
				{Id: "us-ny-authority", Name: "Certificate of Authority", Authority: "Department of Taxation and Finance", FeeCents: 0},
			},
			"retail": {
				{Id: "us-ny-authority", Name: "Certificate of Authority", Authority: "Department of Taxation and Finance", FeeCents: 0},
			},
		},
	}

	// requirementByID indexes the requirements of every jurisdiction.
	requirementByID = func() map[string]*licensingv1.Requirement {
		m := make(map[string]*licensingv1.Requirement)
		for _, kinds := range requirements {
			for _, reqs := range kinds {
				for _, r := range reqs {
					m[r.GetId()] = r
				}
			}
		}
		return m
	}()
)

// seedTime is when the seeded orders were created.
var seedTime = time.Date(2026, time.January, 15, 9, 0, 0, 0, time.UTC)

// seedOrders are the orders a new Service starts with, for the business
// "biz-acme".
func seedOrders() []*licensingv1.LicenceOrder {
	return []*licensingv1.LicenceOrder{
		{
			Id:            "lo-0001",
			RequirementId: "us-ca-food-facility",
			BusinessId:    "biz-acme",
			Status:        licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_GRANTED,
			CreateTime:    timestamppb.New(seedTime),
			CreatedBy:     "seed",
		},
		{
			Id:            "lo-0002",
			RequirementId: "us-ca-abc-41",
			BusinessId:    "biz-acme",
			Status:        licensingv1.LicenceOrderStatus_LICENCE_ORDER_STATUS_FILED,
			CreateTime:    timestamppb.New(seedTime.Add(time.Hour)),
			CreatedBy:     "seed",
		},
	}
}
