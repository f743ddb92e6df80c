"""Training PPO teachers with stable-baselines3 on the batched simulation."""
