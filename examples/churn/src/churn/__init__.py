"""The churn example: a logistic-regression churn classifier in PyTorch."""
