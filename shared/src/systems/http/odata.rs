//! OData v4 helpers shared by Business Central and (later) F&O: string literals, query encoding,
//! and server-driven paging by `@odata.nextLink`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{ApiClient, ApiRequest, HttpError};

/// Everything but RFC 3986 unreserved characters is encoded, so `'`, `&`, `#`, `/`, `+` and
/// spaces inside a literal can never end the parameter, start a fragment or turn into a space.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An OData string literal: single quotes, a quote inside doubled (`O'Brien` → `'O''Brien'`).
pub fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `base?$filter=<filter, percent-encoded>`.
pub fn with_filter(base: &str, filter: &str) -> String {
    format!(
        "{base}?$filter={}",
        utf8_percent_encode(filter, QUERY_VALUE)
    )
}

#[derive(Deserialize)]
pub struct Collection<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

/// Every element of a collection, following `@odata.nextLink` as given (an opaque continuation;
/// never `$top`/`$skip`, which suppress it in BC: microsoft/AL#6858). `page_size` asks for
/// smaller pages with `Prefer: odata.maxpagesize`.
pub async fn get_all<T: DeserializeOwned>(
    api: &ApiClient,
    first_url: &str,
    page_size: Option<usize>,
) -> Result<Vec<T>, HttpError> {
    let mut out = Vec::new();
    let mut next = Some(first_url.to_string());
    while let Some(url) = next.take() {
        let mut req = ApiRequest::get(url);
        if let Some(n) = page_size {
            req = req.header(
                reqwest::header::HeaderName::from_static("prefer"),
                &format!("odata.maxpagesize={n}"),
            );
        }
        let page: Collection<T> = api.send(&req).await?.json()?;
        out.extend(page.value);
        next = page.next_link;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(string_literal("O'Brien"), "'O''Brien'");
        assert_eq!(string_literal("''"), "''''''");
    }

    #[test]
    fn reserved_characters_are_encoded_in_the_filter() {
        let url = with_filter(
            "http://x/purchaseInvoices",
            &format!("vendorInvoiceNumber eq {}", string_literal("A'&#/+ 1")),
        );
        assert_eq!(
            url,
            "http://x/purchaseInvoices?$filter=vendorInvoiceNumber%20eq%20%27A%27%27%26%23%2F%2B%201%27"
        );
    }
}
