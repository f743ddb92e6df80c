"""Agents that act in go2bench envs (random, PPO teachers, Vintix); filled by later stages."""
