//! Purchase orders (A6.4). An order's `number` is read-only (assigned by BC), so the source
//! order's reference travels in each line's `description2`; lines price by `directUnitCost`.
//! Orders have no webhooks (A8): they are only ever polled from the source side.

use super::client::{BcClient, BcError};
use super::wire::{
    DimensionSetLine, NewPurchaseOrder, NewPurchaseOrderLine, PurchaseOrder, PurchaseOrderLine,
};
use crate::systems::http::ApiRequest;
use crate::systems::http::odata;

const EXPAND_LINES: &str = "$expand=purchaseOrderLines";
/// Lines and each line's dimension set lines (multi-level `$expand` works in BC: A3), so an
/// update knows which dimensions changed without a read per line.
const EXPAND_LINES_AND_DIMENSIONS: &str = "$expand=purchaseOrderLines($expand=dimensionSetLines)";

impl BcClient {
    /// By id, with its lines and their dimensions; `None` if BC no longer has it.
    pub async fn purchase_order(&self, id: &str) -> Result<Option<PurchaseOrder>, BcError> {
        self.get_opt(self.url(&format!(
            "purchaseOrders({id})?{EXPAND_LINES_AND_DIMENSIONS}"
        )))
        .await
    }

    /// Creates an order from a deep-insert body (lines, and their `dimensionSetLines`, nested).
    pub(super) async fn create_purchase_order_json(
        &self,
        body: &serde_json::Value,
    ) -> Result<PurchaseOrder, BcError> {
        let resp = self
            .api
            .send(&ApiRequest::post_json(self.url("purchaseOrders"), body))
            .await?;
        Ok(resp.json()?)
    }

    /// A vendor's orders with their lines (to find ours by the reference in `description2`).
    pub async fn purchase_orders_of_vendor(
        &self,
        vendor_number: &str,
    ) -> Result<Vec<PurchaseOrder>, BcError> {
        let url = odata::with_filter(
            &self.url("purchaseOrders"),
            &format!("vendorNumber eq {}", odata::string_literal(vendor_number)),
        );
        let url = format!("{url}&{EXPAND_LINES}");
        Ok(odata::get_all(&self.api, &url, self.page_size).await?)
    }

    /// Creates the order with its lines in one deep insert.
    pub async fn create_purchase_order(
        &self,
        order: &NewPurchaseOrder,
    ) -> Result<PurchaseOrder, BcError> {
        let resp = self
            .api
            .send(&ApiRequest::post_json(self.url("purchaseOrders"), order))
            .await?;
        Ok(resp.json()?)
    }

    pub async fn add_purchase_order_line(
        &self,
        order_id: &str,
        line: &NewPurchaseOrderLine,
    ) -> Result<PurchaseOrderLine, BcError> {
        let url = self.url(&format!("purchaseOrders({order_id})/purchaseOrderLines"));
        Ok(self
            .api
            .send(&ApiRequest::post_json(url, line))
            .await?
            .json()?)
    }

    /// PATCH with the line's entity tag (BC requires If-Match; a stale tag fails with 409).
    pub async fn update_purchase_order_line(
        &self,
        order_id: &str,
        line_id: &str,
        etag: &str,
        changes: &serde_json::Value,
    ) -> Result<PurchaseOrderLine, BcError> {
        let url = self.url(&format!(
            "purchaseOrders({order_id})/purchaseOrderLines({line_id})"
        ));
        Ok(self
            .api
            .send(&ApiRequest::patch_json(url, changes, etag))
            .await?
            .json()?)
    }

    /// Deletes a line; one already gone counts as deleted.
    pub async fn delete_purchase_order_line(
        &self,
        order_id: &str,
        line_id: &str,
        etag: &str,
    ) -> Result<(), BcError> {
        let url = self.url(&format!(
            "purchaseOrders({order_id})/purchaseOrderLines({line_id})"
        ));
        self.delete(url, etag).await
    }

    /// Deletes an order; one already gone counts as deleted.
    pub async fn delete_purchase_order(&self, id: &str, etag: &str) -> Result<(), BcError> {
        self.delete(self.url(&format!("purchaseOrders({id})")), etag)
            .await
    }

    pub(super) async fn delete(&self, url: String, etag: &str) -> Result<(), BcError> {
        match self.api.send(&ApiRequest::delete(url, etag)).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn order_line_dimensions(
        &self,
        line_id: &str,
    ) -> Result<Vec<DimensionSetLine>, BcError> {
        self.line_dimensions_in("purchaseOrderLines", line_id).await
    }

    /// Changes a line's value of one dimension (PATCH with the set line's entity tag).
    pub async fn update_order_line_dimension(
        &self,
        line_id: &str,
        dimension_id: &str,
        etag: &str,
        value_code: &str,
    ) -> Result<(), BcError> {
        let url = self.url(&format!(
            "purchaseOrderLines({line_id})/dimensionSetLines({dimension_id})"
        ));
        let body = serde_json::json!({ "valueCode": value_code });
        self.api
            .send(&ApiRequest::patch_json(url, &body, etag))
            .await?;
        Ok(())
    }

    pub async fn add_order_line_dimension(
        &self,
        line_id: &str,
        code: &str,
        value_code: &str,
    ) -> Result<(), BcError> {
        self.add_line_dimension_in("purchaseOrderLines", line_id, code, value_code)
            .await
    }
}
