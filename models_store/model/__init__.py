"""The deployed model: XGBoost + Random Forest blend, conformal interval, drivers."""
