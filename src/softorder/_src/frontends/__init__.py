"""Framework front ends: registration code only (custom ops, custom_jvp, custom_gradient)."""
