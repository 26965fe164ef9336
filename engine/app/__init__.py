"""What the app around the engine needs: lessons (TOML), hosted-demo limits, server tuning, the
committed default models (`assets`, `pretrain`) and the `python -m engine.app.predict` CLI."""
