package redisclient_test

import (
	"fmt"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/gateway/redisclient"
)

// The rate limit store of a gateway on a Redis Cluster: the client learns
// the slots from the seed nodes when it first sends a command.
func ExampleNew() {
	servers := config.RedisServers{Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379"}, Cluster: true}
	client, err := redisclient.New(servers, redisclient.Timeouts{Read: 50 * time.Millisecond, Write: 50 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	store, err := ratelimit.NewRedis(client, ratelimit.WithKeyPrefix("portcullis:rl:"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	fmt.Println("rate limits in", redisclient.Describe(servers))
	// Output: rate limits in cluster 10.0.0.1:6379,10.0.0.2:6379
}

func ExampleDescribe() {
	fmt.Println(redisclient.Describe(config.RedisServers{Addrs: []string{"127.0.0.1:6379"}, Password: "never shown"}))
	fmt.Println(redisclient.Describe(config.RedisServers{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "portcullis"}))
	// Output:
	// 127.0.0.1:6379
	// sentinel master portcullis via s1:26379,s2:26379
}
