"""Live transcription: OpenAI's Realtime API transcription sessions over WebSocket.

`events` (the protocol's event shapes), `audio` (formats, the input buffer), `vad`
(server VAD on the CPU), `session` (one session: its state and its utterances, each one
GPU workload); the route is `routes/realtime.py`.
"""
