pub mod audit;
pub mod check;
pub mod demo;
pub mod map;
pub mod replay;
pub mod run;
pub mod sandbox;
pub mod secrets;
