//! Field tables of the simulated entity sets: EDM type, max length and writability.
//! Used to validate request bodies, type-check `$filter` literals and check `$select`.
//! Sources: business-central.md A6.1–A6.6 (field lists; read-only per the AL source).

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Ty {
    Guid,
    /// AL Code[n]: stored UPPERCASE, at most n characters.
    Code(usize),
    /// AL Text[n]: at most n characters.
    Text(usize),
    Date,
    DateTime,
    Decimal,
    Int,
    Bool,
    Enum(&'static [&'static str]),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Access {
    Writable,
    ReadOnly,
}
use Access::{ReadOnly as R, Writable as W};

pub(crate) type Field = (&'static str, Ty, Access);

pub(crate) struct Entity {
    /// EDM type name used in OData messages, e.g. `purchaseInvoice`.
    pub type_name: &'static str,
    pub fields: &'static [Field],
    /// Navigation properties usable in `$expand` (and `$select`).
    pub navigation: &'static [&'static str],
}

impl Entity {
    pub(crate) fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.0 == name)
    }
}

pub(crate) const BLOCKED: &[&str] = &[" ", "Payment", "All"];
pub(crate) const LINE_TYPES: &[&str] = &[
    "Comment",
    "Account",
    "Item",
    "Resource",
    "Fixed Asset",
    "Charge",
];
const INVOICE_STATUS: &[&str] = &[
    " ",
    "Draft",
    "In Review",
    "Open",
    "Paid",
    "Canceled",
    "Corrective",
];
/// A6.4: NAV.purchaseOrderEntityBufferStatus.
const ORDER_STATUS: &[&str] = &["Draft", "In Review", "Open"];
/// NAV.purchCrMemoEntityStatus; values as the invoice enum (the page filters on Draft,
/// In Review, Canceled, Corrective, Open, Paid: APIV2PurchaseCreditMemos.Page.al).
const CREDIT_MEMO_STATUS: &[&str] = &[
    " ",
    "Draft",
    "In Review",
    "Open",
    "Paid",
    "Canceled",
    "Corrective",
];
const ACCOUNT_TYPES: &[&str] = &["Posting", "Heading", "Total", "Begin Total", "End Total"];
/// A6.6 lists only the invoice parent types among ours; the order and credit memo ones
/// come from the page SubPageLinks (`"Parent Type" = const("Purchase Credit Memo")`).
const PARENT_TYPES: &[&str] = &[
    "Purchase Invoice",
    "Purchase Invoice Line",
    "Purchase Order",
    "Purchase Order Line",
    "Purchase Credit Memo",
    "Purchase Credit Memo Line",
];

pub(crate) const COMPANY: Entity = Entity {
    type_name: "company",
    fields: &[
        ("id", Ty::Guid, R),
        ("systemVersion", Ty::Text(250), R),
        ("name", Ty::Text(30), R),
        ("displayName", Ty::Text(250), R),
        ("businessProfileId", Ty::Text(250), R),
    ],
    navigation: &[],
};

pub(crate) const VENDOR: Entity = Entity {
    type_name: "vendor",
    fields: &[
        ("id", Ty::Guid, R),
        ("number", Ty::Code(20), W),
        ("displayName", Ty::Text(100), W),
        ("addressLine1", Ty::Text(100), W),
        ("addressLine2", Ty::Text(50), W),
        ("city", Ty::Text(30), W),
        ("state", Ty::Text(30), W),
        ("country", Ty::Code(10), W),
        ("postalCode", Ty::Code(20), W),
        ("phoneNumber", Ty::Text(30), W),
        ("email", Ty::Text(80), W),
        ("website", Ty::Text(80), W),
        ("taxRegistrationNumber", Ty::Text(20), W),
        ("currencyId", Ty::Guid, W),
        ("currencyCode", Ty::Code(10), W),
        ("irs1099Code", Ty::Code(10), W),
        ("paymentTermsId", Ty::Guid, W),
        ("paymentMethodId", Ty::Guid, W),
        ("taxLiable", Ty::Bool, W),
        ("blocked", Ty::Enum(BLOCKED), W),
        ("balance", Ty::Decimal, R),
        ("lastModifiedDateTime", Ty::DateTime, R),
    ],
    navigation: &[],
};

pub(crate) const INVOICE: Entity = Entity {
    type_name: "purchaseInvoice",
    fields: &[
        ("id", Ty::Guid, R),
        ("number", Ty::Code(20), R),
        ("postingDate", Ty::Date, W),
        ("invoiceDate", Ty::Date, W),
        ("dueDate", Ty::Date, W),
        // AL "Vendor Invoice No." is Code[35]: BC upper-cases it.
        ("vendorInvoiceNumber", Ty::Code(35), W),
        ("vendorId", Ty::Guid, W),
        ("vendorNumber", Ty::Code(20), W),
        ("vendorName", Ty::Text(100), R),
        ("payToName", Ty::Text(100), R),
        ("payToContact", Ty::Text(100), R),
        ("payToVendorId", Ty::Guid, W),
        ("payToVendorNumber", Ty::Code(20), W),
        ("shipToName", Ty::Text(100), W),
        ("shipToContact", Ty::Text(100), W),
        ("buyFromAddressLine1", Ty::Text(100), W),
        ("buyFromAddressLine2", Ty::Text(50), W),
        ("buyFromCity", Ty::Text(30), W),
        ("buyFromCountry", Ty::Code(10), W),
        ("buyFromState", Ty::Text(30), W),
        ("buyFromPostCode", Ty::Code(20), W),
        ("shipToAddressLine1", Ty::Text(100), W),
        ("shipToAddressLine2", Ty::Text(50), W),
        ("shipToCity", Ty::Text(30), W),
        ("shipToCountry", Ty::Code(10), W),
        ("shipToState", Ty::Text(30), W),
        ("shipToPostCode", Ty::Code(20), W),
        ("payToAddressLine1", Ty::Text(100), R),
        ("payToAddressLine2", Ty::Text(50), R),
        ("payToCity", Ty::Text(30), R),
        ("payToCountry", Ty::Code(10), R),
        ("payToState", Ty::Text(30), R),
        ("payToPostCode", Ty::Code(20), R),
        ("shortcutDimension1Code", Ty::Code(20), W),
        ("shortcutDimension2Code", Ty::Code(20), W),
        ("currencyId", Ty::Guid, W),
        ("currencyCode", Ty::Code(10), W),
        ("orderId", Ty::Guid, R),
        ("orderNumber", Ty::Code(20), R),
        ("purchaser", Ty::Code(20), W),
        ("pricesIncludeTax", Ty::Bool, W),
        ("discountAmount", Ty::Decimal, W),
        ("discountAppliedBeforeTax", Ty::Bool, R),
        ("totalAmountExcludingTax", Ty::Decimal, R),
        ("totalTaxAmount", Ty::Decimal, R),
        ("totalAmountIncludingTax", Ty::Decimal, R),
        ("status", Ty::Enum(INVOICE_STATUS), R),
        ("lastModifiedDateTime", Ty::DateTime, R),
    ],
    navigation: &["purchaseInvoiceLines", "dimensionSetLines"],
};

pub(crate) const LINE: Entity = Entity {
    type_name: "purchaseInvoiceLine",
    fields: &[
        ("id", Ty::Guid, R),
        // Writable only on the flat `purchaseInvoiceLines` POST (A6.3); checked there.
        ("documentId", Ty::Guid, R),
        ("sequence", Ty::Int, W),
        ("itemId", Ty::Guid, W),
        ("accountId", Ty::Guid, W),
        ("lineType", Ty::Enum(LINE_TYPES), W),
        ("lineObjectNumber", Ty::Code(20), W),
        ("description", Ty::Text(100), W),
        ("description2", Ty::Text(50), W),
        ("unitOfMeasureId", Ty::Guid, W),
        ("unitOfMeasureCode", Ty::Code(10), W),
        ("unitCost", Ty::Decimal, W),
        ("quantity", Ty::Decimal, W),
        ("discountAmount", Ty::Decimal, W),
        ("discountPercent", Ty::Decimal, W),
        ("discountAppliedBeforeTax", Ty::Bool, R),
        ("amountExcludingTax", Ty::Decimal, R),
        ("taxCode", Ty::Code(20), W),
        ("taxPercent", Ty::Decimal, R),
        ("totalTaxAmount", Ty::Decimal, R),
        ("amountIncludingTax", Ty::Decimal, R),
        ("invoiceDiscountAllocation", Ty::Decimal, R),
        ("netAmount", Ty::Decimal, R),
        ("netTaxAmount", Ty::Decimal, R),
        ("netAmountIncludingTax", Ty::Decimal, R),
        ("expectedReceiptDate", Ty::Date, W),
        ("itemVariantId", Ty::Guid, W),
        ("locationId", Ty::Guid, W),
    ],
    navigation: &["dimensionSetLines"],
};

pub(crate) const ACCOUNT: Entity = Entity {
    type_name: "account",
    fields: &[
        ("id", Ty::Guid, R),
        ("number", Ty::Code(20), R),
        ("displayName", Ty::Text(100), R),
        ("category", Ty::Text(50), R),
        ("subCategory", Ty::Text(80), R),
        ("blocked", Ty::Bool, R),
        ("accountType", Ty::Enum(ACCOUNT_TYPES), R),
        ("directPosting", Ty::Bool, R),
        ("netChange", Ty::Decimal, R),
        ("lastModifiedDateTime", Ty::DateTime, R),
    ],
    navigation: &[],
};

pub(crate) const DIMENSION: Entity = Entity {
    type_name: "dimension",
    fields: &[
        ("id", Ty::Guid, R),
        ("code", Ty::Code(20), R),
        ("displayName", Ty::Text(30), R),
        ("consolidationCode", Ty::Code(20), R),
        ("lastModifiedDateTime", Ty::DateTime, R),
    ],
    navigation: &["dimensionValues"],
};

pub(crate) const DIMENSION_VALUE: Entity = Entity {
    type_name: "dimensionValue",
    fields: &[
        ("id", Ty::Guid, R),
        ("code", Ty::Code(20), R),
        ("dimensionId", Ty::Guid, R),
        ("displayName", Ty::Text(50), R),
        ("consolidationCode", Ty::Code(20), R),
        ("lastModifiedDateTime", Ty::DateTime, R),
    ],
    navigation: &[],
};

pub(crate) const DIMENSION_SET_LINE: Entity = Entity {
    type_name: "dimensionSetLine",
    fields: &[
        ("id", Ty::Guid, W),
        ("code", Ty::Code(20), W),
        ("consolidationCode", Ty::Code(20), R),
        ("parentId", Ty::Guid, W),
        ("parentType", Ty::Enum(PARENT_TYPES), W),
        ("displayName", Ty::Text(30), R),
        ("valueId", Ty::Guid, W),
        ("valueCode", Ty::Code(20), W),
        ("valueConsolidationCode", Ty::Code(20), R),
        ("valueDisplayName", Ty::Text(50), R),
    ],
    navigation: &[],
};

/// A6.4; writability from ALAPP `APIV2PurchaseOrders.Page.al` (page 30066): `number`,
/// `vendorName`, `payToName`, the pay-to address, `discountAppliedBeforeTax`, the totals,
/// `status` and `lastModifiedDateTime` are `Editable = false`.
pub(crate) const ORDER: Entity = Entity {
    type_name: "purchaseOrder",
    fields: &[
        ("id", Ty::Guid, R),
        ("number", Ty::Code(20), R),
        ("orderDate", Ty::Date, W),
        ("postingDate", Ty::Date, W),
        ("vendorId", Ty::Guid, W),
        ("vendorNumber", Ty::Code(20), W),
        ("vendorName", Ty::Text(100), R),
        ("payToName", Ty::Text(100), R),
        ("payToVendorId", Ty::Guid, W),
        ("payToVendorNumber", Ty::Code(20), W),
        ("shipToName", Ty::Text(100), W),
        ("shipToContact", Ty::Text(100), W),
        ("buyFromAddressLine1", Ty::Text(100), W),
        ("buyFromAddressLine2", Ty::Text(50), W),
        ("buyFromCity", Ty::Text(30), W),
        ("buyFromCountry", Ty::Code(10), W),
        ("buyFromState", Ty::Text(30), W),
        ("buyFromPostCode", Ty::Code(20), W),
        ("payToAddressLine1", Ty::Text(100), R),
        ("payToAddressLine2", Ty::Text(50), R),
        ("payToCity", Ty::Text(30), R),
        ("payToCountry", Ty::Code(10), R),
        ("payToState", Ty::Text(30), R),
        ("payToPostCode", Ty::Code(20), R),
        ("shipToAddressLine1", Ty::Text(100), W),
        ("shipToAddressLine2", Ty::Text(50), W),
        ("shipToCity", Ty::Text(30), W),
        ("shipToCountry", Ty::Code(10), W),
        ("shipToState", Ty::Text(30), W),
        ("shipToPostCode", Ty::Code(20), W),
        ("shortcutDimension1Code", Ty::Code(20), W),
        ("shortcutDimension2Code", Ty::Code(20), W),
        ("currencyId", Ty::Guid, W),
        ("currencyCode", Ty::Code(10), W),
        ("pricesIncludeTax", Ty::Bool, W),
        ("paymentTermsId", Ty::Guid, W),
        ("shipmentMethodId", Ty::Guid, W),
        ("purchaser", Ty::Code(20), W),
        ("requestedReceiptDate", Ty::Date, W),
        ("discountAmount", Ty::Decimal, W),
        ("discountAppliedBeforeTax", Ty::Bool, R),
        ("totalAmountExcludingTax", Ty::Decimal, R),
        ("totalTaxAmount", Ty::Decimal, R),
        ("totalAmountIncludingTax", Ty::Decimal, R),
        // The AL page has no `Editable = false` on fullyReceived ("Completely Received").
        ("fullyReceived", Ty::Bool, W),
        ("status", Ty::Enum(ORDER_STATUS), R),
        ("lastModifiedDateTime", Ty::DateTime, R),
    ],
    navigation: &["purchaseOrderLines", "dimensionSetLines"],
};

/// A6.4 line fields: `directUnitCost` (not `unitCost`), receive/invoice quantities.
pub(crate) const ORDER_LINE: Entity = Entity {
    type_name: "purchaseOrderLine",
    fields: &[
        ("id", Ty::Guid, R),
        ("documentId", Ty::Guid, R),
        ("sequence", Ty::Int, W),
        ("itemId", Ty::Guid, W),
        ("accountId", Ty::Guid, W),
        ("lineType", Ty::Enum(LINE_TYPES), W),
        ("lineObjectNumber", Ty::Code(20), W),
        ("description", Ty::Text(100), W),
        ("description2", Ty::Text(50), W),
        ("unitOfMeasureId", Ty::Guid, W),
        ("unitOfMeasureCode", Ty::Code(10), W),
        ("quantity", Ty::Decimal, W),
        ("directUnitCost", Ty::Decimal, W),
        ("discountAmount", Ty::Decimal, W),
        ("discountPercent", Ty::Decimal, W),
        ("discountAppliedBeforeTax", Ty::Bool, R),
        ("amountExcludingTax", Ty::Decimal, R),
        ("taxCode", Ty::Code(20), W),
        ("taxPercent", Ty::Decimal, R),
        ("totalTaxAmount", Ty::Decimal, R),
        ("amountIncludingTax", Ty::Decimal, R),
        ("invoiceDiscountAllocation", Ty::Decimal, R),
        ("netAmount", Ty::Decimal, R),
        ("netTaxAmount", Ty::Decimal, R),
        ("netAmountIncludingTax", Ty::Decimal, R),
        ("expectedReceiptDate", Ty::Date, W),
        ("receivedQuantity", Ty::Decimal, R),
        ("invoicedQuantity", Ty::Decimal, R),
        ("invoiceQuantity", Ty::Decimal, W),
        ("receiveQuantity", Ty::Decimal, W),
        ("itemVariantId", Ty::Guid, W),
        ("locationId", Ty::Guid, W),
    ],
    navigation: &["dimensionSetLines"],
};

/// BCDOCS `resources/dynamics_purchasecreditmemo.md`; writability from ALAPP
/// `APIV2PurchaseCreditMemos.Page.al` (page 30083). Unlike invoices, the pay-to address is
/// editable here and `pricesIncludeTax` is `Editable = false`.
pub(crate) const CREDIT_MEMO: Entity = Entity {
    type_name: "purchaseCreditMemo",
    fields: &[
        ("id", Ty::Guid, R),
        ("number", Ty::Code(20), R),
        ("creditMemoDate", Ty::Date, W),
        ("postingDate", Ty::Date, W),
        ("dueDate", Ty::Date, W),
        ("vendorId", Ty::Guid, W),
        ("vendorNumber", Ty::Code(20), W),
        ("vendorName", Ty::Text(100), R),
        // AL "Vendor Cr. Memo No." is Code[35]: BC upper-cases it.
        ("vendorCreditMemoNumber", Ty::Code(35), W),
        ("payToVendorId", Ty::Guid, W),
        ("payToVendorNumber", Ty::Code(20), W),
        ("payToName", Ty::Text(100), R),
        ("buyFromAddressLine1", Ty::Text(100), W),
        ("buyFromAddressLine2", Ty::Text(50), W),
        ("buyFromCity", Ty::Text(30), W),
        ("buyFromCountry", Ty::Code(10), W),
        ("buyFromState", Ty::Text(30), W),
        ("buyFromPostCode", Ty::Code(20), W),
        ("payToAddressLine1", Ty::Text(100), W),
        ("payToAddressLine2", Ty::Text(50), W),
        ("payToCity", Ty::Text(30), W),
        ("payToCountry", Ty::Code(10), W),
        ("payToState", Ty::Text(30), W),
        ("payToPostCode", Ty::Code(20), W),
        ("shortcutDimension1Code", Ty::Code(20), W),
        ("shortcutDimension2Code", Ty::Code(20), W),
        ("currencyId", Ty::Guid, W),
        ("currencyCode", Ty::Code(10), W),
        ("paymentTermsId", Ty::Guid, W),
        ("shipmentMethodId", Ty::Guid, W),
        ("purchaser", Ty::Code(20), W),
        ("pricesIncludeTax", Ty::Bool, R),
        ("discountAmount", Ty::Decimal, W),
        ("discountAppliedBeforeTax", Ty::Bool, R),
        ("totalAmountExcludingTax", Ty::Decimal, R),
        ("totalTaxAmount", Ty::Decimal, R),
        ("totalAmountIncludingTax", Ty::Decimal, R),
        ("status", Ty::Enum(CREDIT_MEMO_STATUS), R),
        ("lastModifiedDateTime", Ty::DateTime, R),
        // The posted invoice the credit memo is applied to (see `Store::resolve_invoice_link`).
        ("invoiceId", Ty::Guid, W),
        ("invoiceNumber", Ty::Code(20), W),
        ("vendorReturnReasonId", Ty::Guid, W),
    ],
    navigation: &["purchaseCreditMemoLines", "dimensionSetLines"],
};

/// BCDOCS `resources/dynamics_purchasecreditmemoline.md`: like invoice lines (`unitCost`),
/// but without `description2` and `expectedReceiptDate`.
pub(crate) const CREDIT_MEMO_LINE: Entity = Entity {
    type_name: "purchaseCreditMemoLine",
    fields: &[
        ("id", Ty::Guid, R),
        ("documentId", Ty::Guid, R),
        ("sequence", Ty::Int, W),
        ("itemId", Ty::Guid, W),
        ("accountId", Ty::Guid, W),
        ("lineType", Ty::Enum(LINE_TYPES), W),
        ("lineObjectNumber", Ty::Code(20), W),
        ("description", Ty::Text(100), W),
        ("unitOfMeasureId", Ty::Guid, W),
        ("unitOfMeasureCode", Ty::Code(10), W),
        ("unitCost", Ty::Decimal, W),
        ("quantity", Ty::Decimal, W),
        ("discountAmount", Ty::Decimal, W),
        ("discountPercent", Ty::Decimal, W),
        ("discountAppliedBeforeTax", Ty::Bool, R),
        ("amountExcludingTax", Ty::Decimal, R),
        ("taxCode", Ty::Code(20), W),
        ("taxPercent", Ty::Decimal, R),
        ("totalTaxAmount", Ty::Decimal, R),
        ("amountIncludingTax", Ty::Decimal, R),
        ("invoiceDiscountAllocation", Ty::Decimal, R),
        ("netAmount", Ty::Decimal, R),
        ("netTaxAmount", Ty::Decimal, R),
        ("netAmountIncludingTax", Ty::Decimal, R),
        ("itemVariantId", Ty::Guid, W),
        ("locationId", Ty::Guid, W),
    ],
    navigation: &["dimensionSetLines"],
};
