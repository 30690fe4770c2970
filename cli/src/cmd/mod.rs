pub mod audit;
pub mod check;
pub mod demo;
pub mod map;
pub mod run;
pub mod sandbox;
pub mod secrets;
