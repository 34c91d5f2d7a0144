INSERT INTO models (id, name, provider, description, category, context_length, supports_streaming, availability, api_base) VALUES
('mistral-3-int4', 'Mistral-3 INT4', 'vLLM', 'Mistral-3 INT4 (1-GPU)', 'chat', 16384, true, 'available', 'http://mistral-3-int4-predictor.private-ai.svc.cluster.local:8080/v1'),
('granite-8b-agent', 'Granite-8B Agent', 'vLLM', 'Granite-3.1-8B Agent', 'agent', 16384, true, 'available', 'http://granite-8b-agent-predictor.private-ai.svc.cluster.local:8080/v1'),
('mistral-3-bf16', 'Mistral-3 BF16', 'vLLM', 'Mistral-3 BF16 (4-GPU)', 'chat', 32768, true, 'available', 'http://mistral-3-bf16-predictor.private-ai.svc.cluster.local:8080/v1'),
('devstral-2', 'Devstral-2', 'vLLM', 'Devstral-2 Agentic Coder (4-GPU)', 'coding', 131072, true, 'available', 'http://devstral-2-predictor.private-ai.svc.cluster.local:8080/v1'),
('gpt-oss-20b', 'GPT-OSS-20B', 'vLLM', 'GPT-OSS-20B (4-GPU)', 'reasoning', 32768, true, 'available', 'http://gpt-oss-20b-predictor.private-ai.svc.cluster.local:8080/v1')
ON CONFLICT (id) DO NOTHING;
