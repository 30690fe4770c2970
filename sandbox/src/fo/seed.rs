//! A small F&O environment for tests and the demo: two legal entities on one chart, a vendor in
//! both and one in one only, main accounts, and dimension values shared and per company.

use super::FoSim;

/// The ledger format the seed's dimension values fit (`FoConfig::default().dimensions`).
pub const LEDGER_FORMAT: &[&str] = &["MainAccount", "BusinessUnit", "CostCenter", "Department"];

/// Legal entities `usmf` (the default company) and `demf`, both on chart "Shared"; vendor
/// US-101 in both (USD in usmf, EUR in demf), DE-001 in demf only; main accounts 600100 and
/// 600200; BusinessUnit 001/002 and Department D10 shared, CostCenter OU_1 shared and OU_2 in
/// usmf only.
pub fn seed(sim: &FoSim) {
    sim.add_legal_entity("demf", "Shared");
    sim.add_vendor("usmf", "US-101", "Fabrikam US", "USD");
    sim.add_vendor("demf", "US-101", "Fabrikam US (DE)", "EUR");
    sim.add_vendor("demf", "DE-001", "Contoso GmbH", "EUR");
    sim.add_main_account("Shared", "600100", "Office supplies");
    sim.add_main_account("Shared", "600200", "Travel");
    sim.add_dimension_value("BusinessUnit", "", "001");
    sim.add_dimension_value("BusinessUnit", "", "002");
    sim.add_dimension_value("CostCenter", "", "OU_1");
    sim.add_dimension_value("CostCenter", "usmf", "OU_2");
    sim.add_dimension_value("Department", "", "D10");
}
