mod openai_engine;
