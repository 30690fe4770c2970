//! The entity sets the simulator serves (d365-fo.md B4, B9): names are case-sensitive (gotcha
//! 12), every key field must be given (B1), and a property not in the list is refused (F&O's
//! OData layer refuses unknown properties; names are case-sensitive too).

/// How a key or field value is typed in URLs and filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    Str,
    Int,
}

#[derive(Debug)]
pub(crate) struct EntitySet {
    pub name: &'static str,
    /// The AOT entity name F&O puts in write errors.
    pub aot: &'static str,
    /// The table label and name for "Cannot create a record in <label> (<table>)".
    pub table_label: &'static str,
    pub table: &'static str,
    pub keys: &'static [(&'static str, KeyType)],
    /// Has `dataAreaId` (company-specific); reads see only the default company without
    /// `cross-company=true`.
    pub company: bool,
    /// POST/PATCH/DELETE allowed.
    pub writable: bool,
    /// Every property the entity has (besides the keys).
    pub fields: &'static [&'static str],
}

impl EntitySet {
    pub(crate) fn has_field(&self, name: &str) -> bool {
        self.keys.iter().any(|(k, _)| *k == name) || self.fields.contains(&name)
    }

    pub(crate) fn key_type(&self, name: &str) -> Option<KeyType> {
        self.keys.iter().find(|(k, _)| *k == name).map(|(_, t)| *t)
    }
}

use KeyType::{Int, Str};

pub(crate) const HEADERS: &str = "VendorInvoiceHeaders";
pub(crate) const LINES: &str = "VendorInvoiceLines";
pub(crate) const VENDORS: &str = "VendorsV2";
pub(crate) const PO_HEADERS: &str = "PurchaseOrderHeadersV2";
pub(crate) const PO_LINES: &str = "PurchaseOrderLinesV2";
pub(crate) const VEND_TRANS: &str = "VendTransBiEntities";
pub(crate) const INVOICE_JOUR: &str = "VendInvoiceJourBiEntities";
pub(crate) const MAIN_ACCOUNTS: &str = "MainAccounts";
pub(crate) const DIMENSION_VALUES: &str = "FinancialDimensionValues";
pub(crate) const LEGAL_ENTITIES: &str = "LegalEntities";

pub(crate) static SETS: &[EntitySet] = &[
    EntitySet {
        name: HEADERS,
        aot: "VendorInvoiceHeaderEntity",
        table_label: "Pending vendor invoices",
        table: "VendInvoiceInfoTable",
        keys: &[("dataAreaId", Str), ("HeaderReference", Str)],
        company: true,
        writable: true,
        fields: &[
            "PostingProfile",
            "VendorAccount",
            "TemplateId",
            "IsApproved",
            "ApprovedBy",
            "CashDiscount",
            "CashDiscountCode",
            "CashDiscountDate",
            "DiscountPercentage",
            "Currency",
            "DeliveryName",
            "InvoiceDescription",
            "InvoiceDate",
            "DocumentNumber",
            "TotalDiscount",
            "ExchangeRate",
            "DueDate",
            "FixedRate",
            "IsOnHold",
            "IsPricesIncludeSalesTax",
            "InvoiceAccount",
            "VendorInvoiceType",
            "ChargesGroup",
            "MatchStatus",
            "InvoiceNumber",
            "NumberSequenceGroup",
            "TermsOfPayment",
            "PaymentId",
            "MethodOfPayment",
            "VendorName",
            "SalesTaxGroup",
            "Date",
            "Comment",
            "InvoiceGroup",
            "DimensionDisplayValue",
            "PurchaseOrderNumber",
            "ImportedAmount",
        ],
    },
    EntitySet {
        name: LINES,
        aot: "VendorInvoiceLineEntity",
        table_label: "Pending vendor invoice lines",
        table: "VendInvoiceInfoLine",
        keys: &[
            ("dataAreaId", Str),
            ("HeaderReference", Str),
            ("InvoiceLineNumber", Int),
        ],
        company: true,
        writable: true,
        fields: &[
            "Currency",
            "DimensionDisplayValue",
            "InvoiceAccount",
            "ItemNumber",
            "NetAmount",
            "ProcurementCategoryName",
            "PurchaseOrder",
            "PurchLineNumber",
            "VendorAccount",
            "LineNumber",
            "LineDescription",
            "LineType",
            "MainAccount",
            "MainAccountDisplayValue",
            "Amount",
            "UnitPrice",
            "Unit",
            "ReceiveNow",
            "SalesTaxGroup",
            "ItemSalesTax",
            "ItemName",
            "InventorySiteId",
            "InventoryWarehouseId",
            "ProcurementCategoryHierarchyName",
            "InvoiceTransactionDate",
        ],
    },
    EntitySet {
        name: VENDORS,
        aot: "VendVendorV2Entity",
        table_label: "Vendors",
        table: "VendTable",
        keys: &[("dataAreaId", Str), ("VendorAccountNumber", Str)],
        company: true,
        writable: true,
        fields: &[
            "VendorOrganizationName",
            "VendorSearchName",
            "VendorGroupId",
            "VendorPartyType",
            "VendorPartyNumber",
            "CurrencyCode",
            "DefaultPaymentTermsName",
            "DefaultVendorPaymentMethodName",
            "OnHoldStatus",
            "InvoiceVendorAccountNumber",
            "SalesTaxGroupCode",
            "TaxExemptNumber",
            "DefaultLedgerDimensionDisplayValue",
            "PrimaryEmailAddress",
            "PrimaryPhoneNumber",
            "AddressStreet",
            "AddressCity",
            "AddressZipCode",
            "AddressCountryRegionId",
            "PersonFirstName",
            "PersonLastName",
        ],
    },
    EntitySet {
        name: PO_HEADERS,
        aot: "PurchPurchaseOrderHeaderV2Entity",
        table_label: "Purchase orders",
        table: "PurchTable",
        keys: &[("dataAreaId", Str), ("PurchaseOrderNumber", Str)],
        company: true,
        writable: true,
        fields: &[
            "PurchaseOrderName",
            "OrderVendorAccountNumber",
            "InvoiceVendorAccountNumber",
            "PurchaseOrderStatus",
            "DocumentApprovalStatus",
            "CurrencyCode",
            "AccountingDate",
            "RequestedDeliveryDate",
            "ConfirmedDeliveryDate",
            "DefaultLedgerDimensionDisplayValue",
            "PaymentTermsName",
            "VendorOrderReference",
            "LanguageId",
            "Email",
            "ReasonComment",
        ],
    },
    EntitySet {
        name: PO_LINES,
        aot: "PurchPurchaseOrderLineV2Entity",
        table_label: "Purchase order lines",
        table: "PurchLine",
        keys: &[
            ("dataAreaId", Str),
            ("PurchaseOrderNumber", Str),
            ("LineNumber", Int),
        ],
        company: true,
        writable: true,
        fields: &[
            "ItemNumber",
            "LineDescription",
            "ProcurementProductCategoryName",
            "OrderedPurchaseQuantity",
            "PurchaseUnitSymbol",
            "PurchasePrice",
            "LineAmount",
            "PurchaseOrderLineStatus",
            "MainAccountId",
            "MainAccountIdDisplayValue",
            "DefaultLedgerDimensionDisplayValue",
            "RequestedDeliveryDate",
        ],
    },
    EntitySet {
        name: VEND_TRANS,
        aot: "VendTransBiEntity",
        table_label: "Vendor transactions",
        table: "VendTrans",
        keys: &[("dataAreaId", Str), ("SourceKey", Int)],
        company: true,
        writable: false,
        fields: &[
            "Invoice",
            "AccountNum",
            "Voucher",
            "TransType",
            "TransDate",
            "DueDate",
            "DocumentNum",
            "CurrencyCode",
            "AmountCur",
            "AmountMST",
            "SettleAmountCur",
            "SettleAmountMST",
            "Closed",
            "LastSettleDate",
            "LastSettleVoucher",
            "PaymReference",
            "SysModifiedDateTime",
            "CreatedOn",
        ],
    },
    EntitySet {
        name: INVOICE_JOUR,
        aot: "VendInvoiceJourBiEntity",
        table_label: "Vendor invoice journal",
        table: "VendInvoiceJour",
        keys: &[("dataAreaId", Str), ("SourceKey", Int)],
        company: true,
        writable: false,
        fields: &[
            "InvoiceId",
            "InvoiceAccount",
            "OrderAccount",
            "InvoiceDate",
            "InvoiceAmount",
            "InvoiceAmountMST",
            "CurrencyCode",
            "LedgerVoucher",
            "PurchId",
            "InvoiceType",
            "DueDate",
            "SysModifiedDateTime",
            "CreatedOn",
        ],
    },
    EntitySet {
        name: MAIN_ACCOUNTS,
        aot: "MainAccountEntity",
        table_label: "Main accounts",
        table: "MainAccount",
        // B4.5: not company-specific; the key is [UNCONFIRMED], this is the community's.
        keys: &[("ChartOfAccounts", Str), ("MainAccountId", Str)],
        company: false,
        writable: false,
        fields: &[
            "Name",
            "MainAccountType",
            "IsSuspended",
            "ActiveFrom",
            "ActiveTo",
        ],
    },
    EntitySet {
        name: DIMENSION_VALUES,
        aot: "FinancialDimensionValueEntity",
        table_label: "Financial dimension values",
        table: "DimensionAttributeValue",
        // B9.8: `LegalEntityId` '' is a value shared across companies.
        keys: &[
            ("FinancialDimension", Str),
            ("LegalEntityId", Str),
            ("DimensionValue", Str),
        ],
        company: false,
        writable: false,
        fields: &["Description", "ActiveFrom", "ActiveTo", "IsSuspended"],
    },
    EntitySet {
        name: LEGAL_ENTITIES,
        aot: "OMLegalEntity",
        table_label: "Legal entities",
        table: "CompanyInfo",
        keys: &[("LegalEntityId", Str)],
        company: false,
        writable: false,
        fields: &["Name", "ChartOfAccounts"],
    },
];

/// Case-sensitive, as F&O's OData endpoint is.
pub(crate) fn set(name: &str) -> Option<&'static EntitySet> {
    SETS.iter().find(|s| s.name == name)
}
