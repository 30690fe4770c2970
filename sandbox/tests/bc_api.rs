//! Business Central simulator behaviour over real HTTP (business-central.md Part A).

mod common;

use common::*;
use mlc_sandbox::bc::{BC_SCOPE, BcConfig};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn token_requires_the_business_central_scope() {
    let sim = bc().await;
    let form = |scope: &'static str, secret: &'static str| {
        [
            ("grant_type", "client_credentials"),
            ("client_id", "bc-client"),
            ("client_secret", secret),
            ("scope", scope),
        ]
    };
    let http = reqwest::Client::new();
    let ok: Value = http
        .post(sim.token_url())
        .form(&form(BC_SCOPE, "bc-secret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["token_type"], "Bearer");
    assert_eq!(ok["expires_in"].as_u64(), Some(3599));
    let bad_scope = http
        .post(sim.token_url())
        .form(&form("https://graph.microsoft.com/.default", "bc-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_scope.status(), 400);
    let body: Value = bad_scope.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(body["error_codes"][0], 70011);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS70011")
    );
    let bad_secret = http
        .post(sim.token_url())
        .form(&form(BC_SCOPE, "wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_secret.status(), 401);
    let body: Value = bad_secret.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("AADSTS7000215")
    );
}

#[tokio::test]
async fn missing_or_expired_bearer_is_a_401_with_correlation_id() {
    let sim = bc().await;
    let url = format!("{}/vendors", company_url(&sim));
    let resp = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Authentication_InvalidCredentials");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("  CorrelationId:  ") && msg.ends_with('.'),
        "{msg}"
    );
    let token = bc_token(&sim).await;
    assert_eq!(
        bc_req(Method::GET, &url, &token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    sim.expire_tokens();
    assert_eq!(
        bc_req(Method::GET, &url, &token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn companies_lists_cronus_and_unknown_sets_are_404() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let v: Value = bc_req(
        Method::GET,
        &format!("{}/companies", sim.api_root()),
        &token,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["value"][0]["name"], "CRONUS USA, Inc.");
    assert_eq!(v["value"][0]["id"], sim.company_id().to_string());
    let r = bc_req(
        Method::GET,
        &format!("{}/salesWidgets", company_url(&sim)),
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "BadRequest_ResourceNotFound"
    );
}

#[tokio::test]
async fn next_link_pages_with_maxpagesize_and_top_suppresses_it() {
    let sim = bc().await;
    for i in 0..7 {
        sim.add_vendor(&format!("X{i:03}"), &format!("Extra {i}"));
    }
    let token = bc_token(&sim).await;
    // 4 demo vendors + 7 = 11; pages of 5.
    let mut url = format!("{}/vendors", company_url(&sim));
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let resp = bc_req(Method::GET, &url, &token)
            .header("Prefer", "odata.maxpagesize=5")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["preference-applied"], "odata.maxpagesize=5");
        let v: Value = resp.json().await.unwrap();
        pages += 1;
        for row in v["value"].as_array().unwrap() {
            assert!(row["@odata.etag"].as_str().unwrap().starts_with("W/\""));
            seen.push(row["number"].as_str().unwrap().to_owned());
        }
        match v["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with("http://") && next.contains("$skiptoken="));
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 11);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 11, "no duplicates across pages");

    let top: Value = bc_req(
        Method::GET,
        &format!("{}/vendors?$top=3", company_url(&sim)),
        &token,
    )
    .header("Prefer", "odata.maxpagesize=2")
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(top["value"].as_array().unwrap().len(), 2);
    assert!(
        top.get("@odata.nextLink").is_none(),
        "AL#6858: $top kills the nextLink"
    );
}

#[tokio::test]
async fn filter_literal_with_escaped_quote_and_url_specials_matches() {
    let sim = bc().await;
    sim.add_vendor("V90000", "O'Brien & Co #1/2");
    let token = bc_token(&sim).await;
    let v: Value = bc_req(
        Method::GET,
        &format!("{}/vendors", company_url(&sim)),
        &token,
    )
    .query(&[("$filter", "displayName eq 'O''Brien & Co #1/2'")])
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let rows = v["value"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["number"], "V90000");
}

#[tokio::test]
async fn or_across_different_fields_is_refused() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let url = format!("{}/purchaseInvoices", company_url(&sim));
    let bad = bc_req(Method::GET, &url, &token)
        .query(&[(
            "$filter",
            "vendorNumber eq 'V10000' or vendorInvoiceNumber eq 'A'",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let msg = bad.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.starts_with(
            "The 'OR' operator is not supported on distinct fields on an OData filter."
        )
    );
    let same = bc_req(Method::GET, &url, &token)
        .query(&[(
            "$filter",
            "vendorInvoiceNumber eq 'A' or vendorInvoiceNumber eq 'B'",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    let malformed = bc_req(Method::GET, &url, &token)
        .query(&[("$filter", "number eq 'x")])
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.json::<Value>().await.unwrap()["error"]["code"],
        "BadRequest_NotFound"
    );
}

#[tokio::test]
async fn deep_insert_creates_header_and_lines_atomically() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let inv = create_invoice(
        &sim,
        &token,
        "inv-001",
        json!([
            {"lineType": "Account", "lineObjectNumber": "6100", "description": "Paper", "quantity": 3, "unitCost": 12.3456},
            {"lineType": "Account", "lineObjectNumber": "6200", "quantity": 1, "unitCost": 100}
        ]),
    )
    .await;
    assert_eq!(inv["status"], "Draft");
    assert_eq!(inv["number"], "1001");
    assert_eq!(
        inv["vendorInvoiceNumber"], "INV-001",
        "Code[35] fields are upper-cased"
    );
    assert!(
        inv.get("purchaseInvoiceLines").is_none(),
        "lines only with $expand"
    );
    assert_eq!(inv["totalAmountIncludingTax"].to_string(), "137.04");
    let views = sim.purchase_invoices();
    assert_eq!(views[0].lines.len(), 2);
    assert_eq!(views[0].lines[0].sequence, 10000);
    assert_eq!(views[0].lines[1].sequence, 20000);
    assert_eq!(
        views[0].lines[1].description, "IT Services",
        "description defaults to the account name"
    );
    assert_eq!(views[0].lines[0].unit_cost.to_string(), "12.3456");

    let bad = bc_req(
        Method::POST,
        &format!("{}/purchaseInvoices", company_url(&sim)),
        &token,
    )
    .json(&json!({
        "vendorNumber": "V10000", "vendorInvoiceNumber": "INV-002",
        "purchaseInvoiceLines": [
            {"lineType": "Account", "lineObjectNumber": "6100", "quantity": 1, "unitCost": 1},
            {"lineType": "Account", "lineObjectNumber": "9999", "quantity": 1, "unitCost": 1}
        ]
    }))
    .send()
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Internal_InvalidTableRelation");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(9999)")
    );
    assert_eq!(
        sim.purchase_invoices().len(),
        1,
        "the failed deep insert created nothing"
    );
}

#[tokio::test]
async fn expand_returns_lines_with_decimals_as_numbers() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let inv = create_invoice(&sim, &token, "E-1", one_line()).await;
    let url = format!(
        "{}/purchaseInvoices({})?$expand=purchaseInvoiceLines",
        company_url(&sim),
        inv["id"].as_str().unwrap()
    );
    let text = bc_req(Method::GET, &url, &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("\"unitCost\":12.3456"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["purchaseInvoiceLines"][0]["netAmount"].to_string(),
        "24.69"
    );
}

#[tokio::test]
async fn read_only_and_unknown_fields_are_refused() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let url = format!("{}/purchaseInvoices", company_url(&sim));
    let ro = bc_req(Method::POST, &url, &token)
        .json(&json!({"vendorNumber": "V10000", "totalAmountIncludingTax": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(ro.status(), 400);
    let body: Value = ro.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BadRequest_InvalidOperation");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Control 'totalAmountIncludingTax' is read-only.")
    );
    let unknown = bc_req(Method::POST, &url, &token)
        .json(&json!({"vendorNumber": "V10000", "colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"]["code"],
        "BadRequest"
    );
    let no_vendor = bc_req(Method::POST, &url, &token)
        .json(&json!({"vendorInvoiceNumber": "X"}))
        .send()
        .await
        .unwrap();
    let body: Value = no_vendor.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Application_DialogException");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("A \"vendorNumber\" or a \"vendorID\" must be provided.")
    );
    let unknown_vendor = bc_req(Method::POST, &url, &token)
        .json(&json!({"vendorNumber": "V99999"}))
        .send()
        .await
        .unwrap();
    assert!(
        unknown_vendor.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The vendor cannot be found.")
    );
    assert!(sim.purchase_invoices().is_empty());
}

#[tokio::test]
async fn posting_renumbers_but_keeps_the_id_and_a_second_post_fails() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let inv = create_invoice(&sim, &token, "P-1", one_line()).await;
    let id = inv["id"].as_str().unwrap().to_owned();
    let post_url = format!(
        "{}/purchaseInvoices({id})/Microsoft.NAV.post",
        company_url(&sim)
    );
    let r = bc_req(Method::POST, &post_url, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    let after: Value = bc_req(
        Method::GET,
        &format!("{}/purchaseInvoices({id})", company_url(&sim)),
        &token,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(after["id"], id.as_str());
    assert_eq!(after["number"], "108001");
    assert_eq!(after["status"], "Open");
    assert_ne!(after["lastModifiedDateTime"], inv["lastModifiedDateTime"]);
    assert_ne!(after["@odata.etag"], inv["@odata.etag"]);

    let again = bc_req(Method::POST, &post_url, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Application_DialogException");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The action can be applied to a draft invoice only.")
    );
    assert_eq!(sim.purchase_invoices()[0].post_count, 1);

    sim.mark_paid(uuid::Uuid::parse_str(&id).unwrap());
    let paid: Value = bc_req(
        Method::GET,
        &format!("{}/purchaseInvoices", company_url(&sim)),
        &token,
    )
    .query(&[("$filter", "status eq 'Paid'")])
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(paid["value"][0]["id"], id.as_str());
}

#[tokio::test]
async fn posting_a_line_without_quantity_fails() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let inv = create_invoice(
        &sim,
        &token,
        "Q-0",
        json!([{"lineType": "Account", "lineObjectNumber": "6100", "unitCost": 5}]),
    )
    .await;
    let url = format!(
        "{}/purchaseInvoices({})/Microsoft.NAV.post",
        company_url(&sim),
        inv["id"].as_str().unwrap()
    );
    let r = bc_req(Method::POST, &url, &token).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("do not have a quantity specified")
    );
}

#[tokio::test]
async fn posting_a_duplicate_vendor_invoice_number_fails() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    for expect in [204, 400] {
        let inv = create_invoice(&sim, &token, "DUP-1", one_line()).await;
        let url = format!(
            "{}/purchaseInvoices({})/Microsoft.NAV.post",
            company_url(&sim),
            inv["id"].as_str().unwrap()
        );
        assert_eq!(
            bc_req(Method::POST, &url, &token)
                .send()
                .await
                .unwrap()
                .status(),
            expect
        );
    }
}

#[tokio::test]
async fn patch_needs_if_match_and_a_stale_etag_conflicts() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let inv = create_invoice(&sim, &token, "M-1", one_line()).await;
    let url = format!(
        "{}/purchaseInvoices({})",
        company_url(&sim),
        inv["id"].as_str().unwrap()
    );
    let etag = inv["@odata.etag"].as_str().unwrap().to_owned();
    let missing = bc_req(Method::PATCH, &url, &token)
        .json(&json!({"vendorInvoiceNumber": "M-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        "BadRequest_InvalidToken"
    );
    let ok = bc_req(Method::PATCH, &url, &token)
        .header("If-Match", &etag)
        .json(&json!({"vendorInvoiceNumber": "M-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["vendorInvoiceNumber"], "M-2");
    assert_ne!(body["@odata.etag"].as_str().unwrap(), etag);
    let stale = bc_req(Method::PATCH, &url, &token)
        .header("If-Match", &etag)
        .json(&json!({"vendorInvoiceNumber": "M-3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 409);
    assert_eq!(
        stale.json::<Value>().await.unwrap()["error"]["code"],
        "Request_EntityChanged"
    );
    let star = bc_req(Method::PATCH, &url, &token)
        .header("If-Match", "*")
        .json(&json!({"dueDate": "2025-02-15"}))
        .send()
        .await
        .unwrap();
    assert_eq!(star.status(), 200);
}

#[tokio::test]
async fn read_only_entity_sets_refuse_writes_with_405() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let r = bc_req(
        Method::POST,
        &format!("{}/accounts", company_url(&sim)),
        &token,
    )
    .json(&json!({"number": "7000", "displayName": "New"}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BadRequest_MethodNotAllowed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("'POST' requests for 'accounts' of EdmType 'Entity' are not allowed")
    );
    let accounts: Value = bc_req(
        Method::GET,
        &format!("{}/accounts", company_url(&sim)),
        &token,
    )
    .query(&[("$filter", "number eq '6300'")])
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(accounts["value"][0]["displayName"], "Travel");
    assert_eq!(accounts["value"][0]["accountType"], "Posting");
}

#[tokio::test]
async fn dimension_set_lines_attach_to_lines_once_per_dimension() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let inv = create_invoice(&sim, &token, "D-1", one_line()).await;
    let line_id = sim.purchase_invoices()[0].lines[0].id;
    let url = format!(
        "{}/purchaseInvoiceLines({line_id})/dimensionSetLines",
        company_url(&sim)
    );
    let r = bc_req(Method::POST, &url, &token)
        .json(&json!({"code": "DEPARTMENT", "valueCode": "SALES"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["parentType"], "Purchase Invoice Line");
    assert_eq!(body["valueCode"], "SALES");
    let dup = bc_req(Method::POST, &url, &token)
        .json(&json!({"code": "DEPARTMENT", "valueCode": "ADM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        dup.json::<Value>().await.unwrap()["error"]["code"],
        "Internal_EntityWithSameKeyExists"
    );
    let unknown = bc_req(Method::POST, &url, &token)
        .json(&json!({"code": "PROJECT", "valueCode": "P-999"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"]["code"],
        "Internal_InvalidTableRelation"
    );
    let nested = format!(
        "{}/purchaseInvoices({})/purchaseInvoiceLines({line_id})/dimensionSetLines",
        company_url(&sim),
        inv["id"].as_str().unwrap()
    );
    let r = bc_req(Method::POST, &nested, &token)
        .json(&json!({"code": "PROJECT", "valueCode": "P-200"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        sim.purchase_invoices()[0].lines[0].dimensions,
        vec![
            ("DEPARTMENT".to_owned(), "SALES".to_owned()),
            ("PROJECT".to_owned(), "P-200".to_owned())
        ]
    );
}

#[tokio::test]
async fn requests_past_the_rate_get_429_with_retry_after_when_configured() {
    for retry_after in [Some(1), None] {
        let sim = bc_with(BcConfig {
            rate_limit: Some(mlc_sandbox::bc::RateLimit {
                requests: 3,
                window: std::time::Duration::from_secs(60),
            }),
            retry_after_secs: retry_after,
            ..BcConfig::default()
        })
        .await;
        let token = bc_token(&sim).await;
        let url = format!("{}/vendors", company_url(&sim));
        for _ in 0..3 {
            assert_eq!(
                bc_req(Method::GET, &url, &token)
                    .send()
                    .await
                    .unwrap()
                    .status(),
                200
            );
        }
        let r = bc_req(Method::GET, &url, &token).send().await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(
            r.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
            retry_after.map(|s| s.to_string())
        );
        assert_eq!(sim.throttled_count(), 1);
        assert!(
            bc_token(&sim).await.len() > 10,
            "the token endpoint is not rate limited"
        );
    }
}
